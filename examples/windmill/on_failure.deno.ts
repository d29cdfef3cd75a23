// Windmill error handler (failure_module) of the kit's flows. A cap hit fails
// its for-each item, so the loop, so the flow, and the steps that revoke the
// key and read the summary never run: this step does both, so the failed run
// still says what it spent and why it stopped. It returns
// {error, revoked, summary}.
//
// Windmill runs each iteration of a parallel for-each as its own subflow with
// a copy of this handler, so the handler may run inside the failing
// iteration, where WM_FLOW_JOB_ID is the iteration's id. The run label and
// key id therefore come from the flow (`results.issue_key`), never from the
// environment.
//
// "./revoke_key.ts" is the Windmill script path f/keybrake/revoke_key (a
// relative import names a script by path plus ".ts", whatever its language),
// deployed from revoke_key.deno.ts.

import { main as revoke } from "./revoke_key.ts";
import { main as summarize } from "./summary.ts";

// The Windmill resource type "keybrake" (keybrake.resource-type.yaml).
type Keybrake = { url: string; api_token: string };

export async function main(
  keybrake: Keybrake,
  run_label: string,
  key_id: string = "",
  error: { name?: string; message?: string; step_id?: string } = {},
) {
  // Revoke first: spend power ends even if the summary cannot be read.
  const { revoked } = await revoke(keybrake, key_id, run_label);
  let summary: unknown = null;
  try {
    summary = await summarize(keybrake, run_label, []);
  } catch (err) {
    console.log(`summary unavailable: ${(err as Error).message}`);
  }
  return { error, revoked, summary };
}
