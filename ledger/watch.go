package ledger

import "context"

// KeyWatcher is implemented by a Store that can tell when a key changes on
// another node (revoked, for now), so that caches of key data can drop it at
// once instead of waiting for their TTL. Postgres does it with LISTEN/NOTIFY;
// the embedded ledger serves one node and needs no such thing.
type KeyWatcher interface {
	// WatchKeys calls onChange with the id of each key that changed, and with
	// "*" when changes may have been missed (after a reconnect) so that the
	// caller drops everything it cached. It blocks, reconnecting as needed,
	// until ctx is done, and then returns ctx.Err().
	WatchKeys(ctx context.Context, onChange func(keyID string)) error
}
