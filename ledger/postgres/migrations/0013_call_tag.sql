-- 0013: the tag Keybrake wrote on the vendor object a call creates (Stripe
-- metadata[keybrake_call_id], Resend tag keybrake_call_id), recorded
-- before the call is forwarded; '' when it wrote none. The reconciler
-- finds a call's object by it, and never releases an untagged call on the
-- vendor's silence. A retry of an idempotent request reuses its first
-- attempt's tag (found through calls_idempotency_idx). A constant default:
-- no table rewrite.
ALTER TABLE calls ADD COLUMN tag text NOT NULL DEFAULT '';
