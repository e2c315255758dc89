// DPO in the browser tab: this Web Worker loads the engine (WebGPU when the browser has a GPU
// adapter, else WebAssembly on all cores), builds the policy and a frozen reference from the
// model's safetensors, and trains on the labeled pairs the server tokenized; it posts each step's
// metrics (TRL's names) and, at the end, the weights as a safetensors file for the server to save.
const E = await import('/dist/src/core/index.js');
const { initEngine } = await import('/dist/src/engine.js');
const { parseSafetensors, encodeHeader } = await import('/dist/src/io/safetensors-format.js');
const { buildModel, trainAll } = await import('/dist/src/models/build.js');
const { collatePreference } = await import('/dist/src/data/collate.js');
const { sequenceLogps } = await import('/dist/src/train/logps.js');
const { LOSSES, splitPairs } = await import('/dist/src/train/losses.js');
const { clipGradNorm, DEFAULT_OPTIMIZER, Optimizer } = await import('/dist/src/train/optim.js');
const { lrMultiplier } = await import('/dist/src/train/schedule.js');

let run = null; // { policy, reference, params, opt, data, step, order, settings }
let stopping = false;

const post = (type, body) => postMessage({ type, ...body });
const get = async (path) => {
  const r = await fetch(path);
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
  return r;
};

/** The examples of step `step` (1-based): consecutive slices of a shuffled order, reshuffled every epoch. */
function batchOf(step) {
  const { data, settings } = run;
  const n = data.pairs.length,
    size = Math.min(settings.batchSize, n);
  const perEpoch = Math.floor(n / size) || 1;
  const epoch = Math.floor((step - 1) / perEpoch),
    k = (step - 1) % perEpoch;
  if (!run.order || run.order.epoch !== epoch) {
    const idx = Array.from({ length: n }, (_, i) => i);
    let s = ((epoch + 1) * 2654435761) % 2 ** 32;
    for (let i = n - 1; i > 0; i--) {
      // Fisher-Yates with a small LCG: the same order on every machine
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const j = s % (i + 1);
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    run.order = { epoch, idx };
  }
  return { indices: run.order.idx.slice(k * size, (k + 1) * size), epoch: step / perEpoch };
}

async function setup(settings) {
  const backend = await initEngine({ device: 'auto', log: (m) => post('log', { line: m }) });
  post('log', { line: `engine: ${backend.name}` });
  const data = await (await get('/api/tab/data')).json();
  if (data.pairs.length === 0) throw new Error('no labeled pairs to train on: label some first');
  const config = await (await get('/api/tab/model/config.json')).json();
  const bytes = new Uint8Array(await (await get('/api/tab/model/model.safetensors')).arrayBuffer());
  const policy = buildModel(config, parseSafetensors(bytes, 'model.safetensors').tensors, 'model');
  const reference = buildModel(config, parseSafetensors(bytes, 'model.safetensors').tensors, 'reference');
  const params = trainAll(policy);
  const opt = new Optimizer(params, { ...DEFAULT_OPTIMIZER });
  run = { policy, reference, params, opt, data, config, step: 0, order: null, settings, device: backend.name };
  post('log', {
    line:
      `${data.pairs.length} pairs; ${params.reduce((a, p) => a + p.tensor.size, 0)} ` +
      `parameters trained on ${backend.name}`,
  });
}

/** One optimizer step of the sigmoid DPO loss (Eq. 7, arXiv:2305.18290) on one batch; TRL's metric names. */
async function step() {
  const { policy, reference, opt, data, settings } = run;
  const s = run.step + 1;
  const { indices, epoch } = batchOf(s);
  const pairs = indices.map((i) => data.pairs[i]);
  const P = pairs.length;
  const b = collatePreference(pairs, { padId: data.padId }); // 2P rows: the chosen, then the rejected
  const batch = {
    rows: b.B,
    T: b.T,
    inputIds: b.inputIds,
    attentionMask: b.attentionMask,
    completionMask: b.completionMask,
  };
  const host = await E.tidyAsync(async () => {
    const pol = sequenceLogps(policy, batch);
    const ref = E.noGrad(() => sequenceLogps(reference, batch).seq);
    const loss = E.mean(
      LOSSES.sigmoid.fn(splitPairs({ policy: pol.seq, ref, tokens: pol.tokens }, P), {
        beta: settings.beta,
        labelSmoothing: 0,
        simpoGamma: 0,
      }).losses,
    );
    E.backward(loss);
    return { loss: await loss.item(), pol: await pol.seq.toArray(), ref: await ref.toArray() };
  });
  // As `tsdpo dpo`'s defaults: the global gradient norm clipped to 1, AdamW, linear decay, no warmup.
  const gradNorm = await clipGradNorm(run.params, 1);
  if (!Number.isFinite(host.loss) || !Number.isFinite(gradNorm))
    throw new Error(`loss ${host.loss}, gradient norm ${gradNorm} at step ${s}: lower the learning rate`);
  const lr = settings.lr * lrMultiplier('linear', s - 1, 0, settings.steps);
  opt.update(lr);
  opt.zeroGrad();
  run.step = s;
  let rc = 0,
    rr = 0,
    acc = 0,
    lc = 0,
    lrj = 0;
  for (let i = 0; i < P; i++) {
    const c = settings.beta * (host.pol[i] - host.ref[i]),
      r = settings.beta * (host.pol[P + i] - host.ref[P + i]);
    rc += c;
    rr += r;
    acc += c > r ? 1 : 0;
    lc += host.pol[i];
    lrj += host.pol[P + i];
  }
  return {
    step: s,
    epoch,
    loss: host.loss,
    grad_norm: gradNorm,
    learning_rate: lr,
    'rewards/chosen': rc / P,
    'rewards/rejected': rr / P,
    'rewards/accuracies': acc / P,
    'rewards/margins': (rc - rr) / P,
    'logps/chosen': lc / P,
    'logps/rejected': lrj / P,
  };
}

/** The trained weights as a safetensors file (float32, the model's own tensor names). */
async function weights() {
  const list = [];
  for (const [name, t] of run.policy.params) list.push({ name, dtype: 'F32', shape: t.shape, data: await t.toArray() });
  const { head, entries } = encodeHeader(list, { format: 'pt' });
  const total = head.byteLength + (entries.length ? entries[entries.length - 1].end : 0);
  const out = new Uint8Array(total);
  out.set(head, 0);
  const byName = new Map(list.map((x) => [x.name, x]));
  for (const e of entries)
    out.set(
      new Uint8Array(byName.get(e.name).data.buffer, byName.get(e.name).data.byteOffset, e.end - e.begin),
      head.byteLength + e.begin,
    );
  return out;
}

onmessage = async (ev) => {
  const msg = ev.data;
  if (msg.type === 'stop') {
    stopping = true;
    return;
  }
  if (msg.type !== 'start') return;
  try {
    stopping = false;
    if (!msg.resume || !run) await setup(msg.settings);
    else run.settings = { ...run.settings, steps: msg.settings.steps };
    post('status', { status: 'running', device: run.device });
    while (run.step < run.settings.steps) {
      if (stopping) {
        post('status', { status: 'stopped', step: run.step });
        return;
      }
      post('metrics', { metrics: await step() });
    }
    post('saving', { weights: await weights() });
  } catch (e) {
    post('status', { status: 'failed', error: String((e && e.stack) || e) });
  }
};
post('ready', {});
