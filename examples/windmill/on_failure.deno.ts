// Windmill error handler of the flow (failure_module): the run failed (a cap
// hit fails its for-each item, so the loop, so the flow), so the summary step
// never ran. This step does both jobs of the end of a run: revoke every active
// key of the run (label = WM_FLOW_JOB_ID, which here is the flow run's id),
// then read the run's summary, so the failed run still says what it spent and
// why it stopped. It returns {error, revoked, summary}.

import { main as revoke } from "./revoke_key.ts";
import { main as summarize } from "./summary.ts";

// The Windmill resource type "keybrake" (keybrake.resource-type.yaml).
type Keybrake = { url: string; api_token: string };

export async function main(keybrake: Keybrake, error: { name?: string; message?: string } = {}) {
  // Revoke first: spend power ends even if the summary cannot be read.
  const { revoked } = await revoke(keybrake, "", "");
  let summary: unknown = null;
  try {
    summary = await summarize(keybrake, "", []);
  } catch (err) {
    console.log(`summary unavailable: ${(err as Error).message}`);
  }
  return { error, revoked, summary };
}
