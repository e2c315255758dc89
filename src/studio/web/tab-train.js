// The page's side of training in the tab: starts tab-worker.js, relays its messages, and sends
// the trained weights to the server, which saves them as a model folder beside the server's runs.
export function startTabTraining(o) {
  let worker = startTabTraining.worker;
  const name =
    startTabTraining.runName && o.resume
      ? startTabTraining.runName
      : `run-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-tab`;
  startTabTraining.runName = name;
  const metrics = startTabTraining.metrics && o.resume ? startTabTraining.metrics : [];
  startTabTraining.metrics = metrics;
  if (!worker) {
    worker = startTabTraining.worker = new Worker('/tab-worker.js', { type: 'module' });
    // The worker imports the engine first; it says 'ready' when it listens.
    startTabTraining.ready = new Promise((ok) =>
      worker.addEventListener('message', (e) => {
        if (e.data.type === 'ready') ok();
      }),
    );
  }
  worker.onerror = (e) => o.onStatus(`failed: ${e.message}`);
  worker.onmessage = async (ev) => {
    const m = ev.data;
    if (m.type === 'log') o.onLog(m.line);
    if (m.type === 'metrics') {
      metrics.push(m.metrics);
      o.onMetrics(m.metrics);
    }
    if (m.type === 'status') {
      if (m.error) o.onLog(m.error);
      o.onStatus(m.status === 'running' ? `running (${m.device})` : m.status);
    }
    if (m.type === 'saving') {
      o.onStatus('saving');
      const send = (part, body) =>
        fetch(`/api/tab/save?name=${encodeURIComponent(name)}&part=${part}`, { method: 'POST', body }).then(
          async (r) => {
            if (!r.ok) throw new Error((await r.json()).error);
          },
        );
      try {
        await send('metrics', metrics.map((x) => JSON.stringify(x)).join('\n') + '\n');
        await send('model', m.weights);
        o.onLog(`model saved on the server as ${name}`);
        o.onStatus('done');
      } catch (e) {
        o.onLog(String(e.message));
        o.onStatus('failed');
      }
    }
  };
  const settings = { steps: o.steps, beta: o.beta, lr: o.lr, batchSize: 8 };
  startTabTraining.ready.then(() => worker.postMessage({ type: 'start', resume: o.resume, settings }));
  return { stop: () => worker.postMessage({ type: 'stop' }) };
}
