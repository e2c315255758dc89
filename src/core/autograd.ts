// Reverse-mode automatic differentiation. Every op that runs while gradients are enabled and
// sees an input with requiresGrad records a Node on its output(s): the inputs and a vjp that
// maps the outputs' gradients to the inputs' gradients. backward() walks the nodes in reverse
// topological order; leaves (parameters) accumulate into `.grad`, so calling backward on several
// micro-batches sums their gradients.
import { Tensor, keep, tidy, viewOf } from './tensor.js';
import { fmt, sameShape } from './shape.js';

export interface Node {
  /** Op name, for error messages. */
  readonly op: string;
  readonly inputs: readonly Tensor[];
  readonly outputs: readonly Tensor[];
  /**
   * Gradients of the inputs given the outputs' gradients (null where an input gets none). An
   * output nobody used gets null; a single-output node is only called with its gradient set.
   */
  readonly vjp: (dys: readonly (Tensor | null)[]) => readonly (Tensor | null)[];
  /**
   * Optional: add input k's gradient straight into `target` (a leaf's existing .grad), saving a
   * temporary as large as the input (embedding tables: a scatter-add into the gradient).
   */
  vjpInto?: (dys: readonly (Tensor | null)[], k: number, target: Tensor) => void;
}

let gradDepth = 0; // > 0 inside noGrad

export function gradEnabled(): boolean {
  return gradDepth === 0;
}

/** Runs fn without recording autograd nodes (inference, reference model, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  gradDepth++;
  try {
    const r = fn();
    if (r instanceof Promise) {
      return r.finally(() => {
        gradDepth--;
      }) as T;
    }
    gradDepth--;
    return r;
  } catch (e) {
    gradDepth--;
    throw e;
  }
}

/**
 * Runs fn with recording on even inside noGrad or backward (a vjp that recomputes its forward, as
 * activation checkpointing does, records the recomputation and backpropagates through it).
 */
export function withGrad<T>(fn: () => T): T {
  const saved = gradDepth;
  gradDepth = 0;
  try {
    return fn();
  } finally {
    gradDepth = saved;
  }
}

/** Attaches a node to `out` when any input needs a gradient; returns `out`. */
export function record(
  out: Tensor,
  op: string,
  inputs: readonly Tensor[],
  vjp: (dy: Tensor) => readonly (Tensor | null)[],
): Tensor {
  recordMany([out], op, inputs, (dys) => vjp(dys[0]!));
  return out;
}

/** record for ops with several outputs (split): one node shared by all of them. */
export function recordMany(
  outs: readonly Tensor[],
  op: string,
  inputs: readonly Tensor[],
  vjp: Node['vjp'],
): readonly Tensor[] {
  if (gradDepth === 0 && inputs.some((t) => t.requiresGrad)) {
    const node: Node = { op, inputs: [...inputs], outputs: [...outs], vjp };
    for (const o of outs) {
      o.requiresGrad = true;
      o.node = node;
    }
  }
  return outs;
}

/** A tensor that shares x's values but is cut from the graph. */
export function detach(x: Tensor): Tensor {
  const t = new Tensor(x.storage, x.shape);
  t.name = x.name;
  return t;
}

/** Marks a tensor as a trainable leaf. */
export function param(t: Tensor, name?: string): Tensor {
  t.requiresGrad = true;
  if (name !== undefined) t.name = name;
  return t;
}

/** Nodes reachable from root, inputs before the nodes that use them. */
function topoOrder(root: Node): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>([root]);
  // Iterative DFS (graphs of deep models overflow recursion).
  const stack: [Node, number][] = [[root, 0]];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [n, i] = top;
    if (i < n.inputs.length) {
      top[1]++;
      const child = n.inputs[i].node;
      if (child !== null && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(n);
    }
  }
  return order;
}

export interface BackwardHooks {
  /** Adds `g` into an existing gradient buffer in place (provided by ops to avoid a cycle). */
  addInto(target: Tensor, g: Tensor): void;
  add(a: Tensor, b: Tensor): Tensor;
  copy(a: Tensor): Tensor;
  ones(like: Tensor): Tensor;
}

let hooks: BackwardHooks | null = null;
export function setBackwardHooks(h: BackwardHooks): void {
  hooks = h;
}

export interface BackwardOptions {
  /** d(objective)/d(root); required when root is not a scalar. */
  grad?: Tensor;
  /**
   * Free each intermediate tensor of the graph as soon as backward is past it (PyTorch frees its
   * saved activations the same way), which lowers peak memory by about the activations' size.
   * The root stays; keep anything else you need afterwards with detach() before calling.
   */
  free?: boolean;
}

/**
 * Computes d(root)/d(leaf) for every leaf with requiresGrad reachable from root and adds it to
 * leaf.grad. root must be a scalar unless a gradient for it is given.
 */
export function backward(root: Tensor, opts: BackwardOptions = {}): void {
  const h = hooks!;
  const grad = opts.grad;
  if (!root.requiresGrad)
    throw new Error(`backward: ${root.describe()} does not depend on any tensor with requiresGrad`);
  if (grad === undefined && root.size !== 1) {
    throw new Error(`backward: root ${root.describe()} is not a scalar; pass its gradient`);
  }
  if (grad !== undefined && !sameShape(grad.shape, root.shape)) {
    throw new Error(`backward: gradient shape ${fmt(grad.shape)} differs from root ${fmt(root.shape)}`);
  }
  tidy(() =>
    noGrad(() => {
      const order = topoOrder(root.node!);
      const grads = new Map<Tensor, Tensor>();
      grads.set(root, grad ?? h.ones(root));
      for (let i = order.length - 1; i >= 0; i--) {
        const node = order[i];
        const dys = node.outputs.map((o) => grads.get(o) ?? null);
        if (dys.every((d) => d === null)) continue;
        for (const o of node.outputs) grads.delete(o);
        const needing = node.inputs.map((x, k) => (x.requiresGrad ? k : -1)).filter((k) => k >= 0);
        const only = needing.length === 1 ? node.inputs[needing[0]] : null;
        if (node.vjpInto && only && only.node === null && only.grad !== null) {
          node.vjpInto(dys, needing[0], only.grad);
          for (const d of dys) if (d !== null && d !== grad) d.dispose();
          if (opts.free) for (const o of node.outputs) if (o !== root) o.dispose();
          continue;
        }
        const gs = node.vjp(dys);
        // A vjp may hand a dy itself (or one tensor twice) to several inputs: give each holder its
        // own view, so that disposing one never frees another's gradient.
        const held = new Set<Tensor>(dys.filter((d): d is Tensor => d !== null));
        node.inputs.forEach((x, k) => {
          let g = gs[k];
          if (g == null || !x.requiresGrad) return;
          if (held.has(g)) g = viewOf(g, g.shape);
          held.add(g);
          if (!sameShape(g.shape, x.shape)) {
            throw new Error(`backward: vjp of ${node.op} gave gradient ${fmt(g.shape)} for input ${fmt(x.shape)}`);
          }
          if (x.node === null) accumulateLeaf(x, g, h);
          else {
            const prev = grads.get(x);
            if (prev === undefined) grads.set(x, g);
            else {
              grads.set(x, h.add(prev, g));
              prev.dispose();
              g.dispose();
            }
          }
        });
        for (const g of gs) if (g != null && !held.has(g)) g.dispose(); // gradients nobody needs
        for (const d of dys) if (d !== null && d !== grad) d.dispose();
        // Every consumer of this node's outputs came before it in this order: they are done.
        if (opts.free) for (const o of node.outputs) if (o !== root) o.dispose();
      }
    }),
  );
}

function accumulateLeaf(x: Tensor, g: Tensor, h: BackwardHooks): void {
  if (x.grad === null) {
    // The leaf's gradient is accumulated in place later, so it must own its storage.
    x.grad = keep(g.storage.refs > 1 ? h.copy(g) : g);
    if (x.grad !== g) g.dispose();
  } else {
    h.addInto(x.grad, g);
    g.dispose();
  }
}
