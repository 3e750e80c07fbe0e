// Helpers shared by the @polkadot/api tests.

/**
 * Signs and sends `tx`; resolves with the hash and events of the block that includes it, or
 * rejects with the module error (`section.Name`) when dispatch fails.
 */
export function send(api, tx, signer) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('not included within 60 s')), 60_000);
    tx.signAndSend(signer, ({ status, events, dispatchError }) => {
      if (dispatchError) {
        clearTimeout(timer);
        const err = dispatchError.isModule ? api.registry.findMetaError(dispatchError.asModule) : null;
        reject(new Error(err ? `${err.section}.${err.name}` : dispatchError.toString()));
      } else if (status.isInBlock || status.isFinalized) {
        // The dev chain finalizes each block as it seals it, so the pool may report
        // Finalized without an InBlock before it.
        clearTimeout(timer);
        const blockHash = status.isInBlock ? status.asInBlock : status.asFinalized;
        resolve({ blockHash, events: events.map(({ event }) => event) });
      }
    }).catch((e) => { clearTimeout(timer); reject(e); });
  });
}

/**
 * Waits until `job` has been drawn (it is queued at submission and drawn in a later block);
 * resolves with its record from `InferenceApi::job`.
 */
export async function drawn(api, job, seconds = 30) {
  for (let i = 0; i < seconds * 5; i += 1) {
    const view = await api.call.inferenceApi.job(job);
    if (view.isSome) return view.unwrap()[0];
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`job ${job} not drawn within ${seconds} s`);
}
