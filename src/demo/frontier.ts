// The reward-vs-KL frontier of a set of policies: the upper concave hull of their (KL, reward)
// points. Mixing two policies reaches any point on the segment between them or better (reward is
// linear in the mixture, KL convex), so the hull is what the baselines achieve together; a DPO point
// is "on or above the baselines' frontier" when its reward is at least the hull's at its KL.

export interface FrontierPoint {
  kl: number;
  reward: number;
}

/** The upper concave hull, in increasing KL with non-decreasing reward (dominated points dropped). */
export function upperFrontier(points: readonly FrontierPoint[]): FrontierPoint[] {
  const sorted = points
    .filter((p) => Number.isFinite(p.kl) && Number.isFinite(p.reward))
    .slice()
    .sort((a, b) => a.kl - b.kl || b.reward - a.reward);
  const pareto: FrontierPoint[] = [];
  for (const p of sorted) if (pareto.length === 0 || p.reward > pareto[pareto.length - 1].reward) pareto.push(p);
  const hull: FrontierPoint[] = [];
  for (const p of pareto) {
    // Drop the last point while it lies on or below the segment from the one before it to p.
    while (hull.length >= 2) {
      const a = hull[hull.length - 2],
        b = hull[hull.length - 1];
      const cross = (b.kl - a.kl) * (p.reward - a.reward) - (b.reward - a.reward) * (p.kl - a.kl);
      if (cross >= 0) hull.pop();
      else break;
    }
    hull.push(p);
  }
  return hull;
}

/** The hull's reward at `kl`: linear between hull points, flat past the last one, the first one's below it. */
export function frontierReward(hull: readonly FrontierPoint[], kl: number): number {
  if (hull.length === 0) throw new Error('frontierReward: empty frontier');
  if (kl <= hull[0].kl) return hull[0].reward;
  for (let i = 1; i < hull.length; i++) {
    const a = hull[i - 1],
      b = hull[i];
    if (kl <= b.kl) return a.reward + ((b.reward - a.reward) * (kl - a.kl)) / (b.kl - a.kl);
  }
  return hull[hull.length - 1].reward;
}

/** How a method's points compare with a frontier: how many lie on or above it. */
export interface FrontierCheck {
  /** The frontier (upper concave hull of the baseline points). */
  hull: FrontierPoint[];
  points: number;
  onOrAbove: number;
  /** The same for the final point of each run. */
  finals: number;
  finalsOnOrAbove: number;
}

/**
 * Counts the runs' points whose reward is at least the frontier's at their KL, within one standard
 * error of the point's reward ("on" the frontier is as close as the estimate can tell).
 */
export function checkAgainst(
  baselines: readonly FrontierPoint[],
  runs: readonly (readonly (FrontierPoint & { rewardSe: number })[])[],
): FrontierCheck {
  const hull = upperFrontier(baselines);
  const ok = (p: FrontierPoint & { rewardSe: number }) =>
    p.reward + (Number.isFinite(p.rewardSe) ? p.rewardSe : 0) >= frontierReward(hull, p.kl);
  const all = runs.flat(),
    finals = runs.filter((r) => r.length > 0).map((r) => r[r.length - 1]);
  return {
    hull,
    points: all.length,
    onOrAbove: all.filter(ok).length,
    finals: finals.length,
    finalsOnOrAbove: finals.filter(ok).length,
  };
}
