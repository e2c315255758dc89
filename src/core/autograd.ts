// Reverse-mode automatic differentiation. Every op that runs while gradients are enabled and
// sees an input with requiresGrad records a Node on its output: the inputs and a vjp that maps
// the output's gradient to the inputs' gradients. backward() walks the nodes in reverse
// topological order; leaves (parameters) accumulate into `.grad`, so calling backward on several
// micro-batches sums their gradients.
import { Tensor, keep, tidy, viewOf } from './tensor.js';
import { fmt, sameShape } from './shape.js';

export interface Node {
  /** Op name, for error messages. */
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** Gradients of the inputs given the output's gradient (null where an input gets none). */
  readonly vjp: (dy: Tensor) => readonly (Tensor | null)[];
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
      return r.finally(() => { gradDepth--; }) as T;
    }
    gradDepth--;
    return r;
  } catch (e) {
    gradDepth--;
    throw e;
  }
}

/** Attaches a node to `out` when any input needs a gradient; returns `out`. */
export function record(out: Tensor, op: string, inputs: readonly Tensor[], vjp: Node['vjp']): Tensor {
  if (gradDepth === 0 && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, inputs, vjp };
  }
  return out;
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

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS (graphs of deep models overflow recursion).
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const child = inputs[i];
      if (child.node !== null && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
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

/**
 * Computes d(root)/d(leaf) for every leaf with requiresGrad reachable from root and adds it to
 * leaf.grad. root must be a scalar unless `grad` (d(objective)/d(root)) is given.
 */
export function backward(root: Tensor, grad?: Tensor): void {
  const h = hooks!;
  if (!root.requiresGrad) throw new Error(`backward: ${root.describe()} does not depend on any tensor with requiresGrad`);
  if (grad === undefined && root.size !== 1) {
    throw new Error(`backward: root ${root.describe()} is not a scalar; pass its gradient`);
  }
  if (grad !== undefined && !sameShape(grad.shape, root.shape)) {
    throw new Error(`backward: gradient shape ${fmt(grad.shape)} differs from root ${fmt(root.shape)}`);
  }
  tidy(() => noGrad(() => {
    const order = topoOrder(root);
    const grads = new Map<Tensor, Tensor>();
    grads.set(root, grad ?? h.ones(root));
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const dy = grads.get(t);
      if (dy === undefined || t.node === null) continue;
      grads.delete(t);
      const node = t.node;
      const gs = node.vjp(dy);
      // A vjp may hand dy itself (or one tensor twice) to several inputs: give each holder its
      // own view, so that disposing one never frees another's gradient.
      const held = new Set<Tensor>([dy]);
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
      if (dy !== grad) dy.dispose();
    }
  }));
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
