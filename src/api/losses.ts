// The DPO loss registry, read-only for library users: each loss by its `loss_type` name
// (train/losses.ts holds the definitions and the equations they implement).
import * as registry from '../train/losses.js';

/** The inputs of a loss: policy and reference log-probs of each pair's chosen and rejected completion. */
export type LossInputs = registry.LossInputs;
/** A loss's options (beta, label_smoothing, ...). */
export type LossOptions = registry.LossOptions;
/** A loss's per-pair losses and the implicit rewards of chosen and rejected. */
export type LossOutput = registry.LossOutput;
/** A DPO-family loss: a pure function of the log-probs and options. */
export type LossFn = registry.LossFn;

/** Every loss by its `loss_type` name (TRL 1.13's, and tsdpo's own reference_free and simpo). */
export const LOSSES: Readonly<Record<string, LossFn>> = registry.LOSSES;
/** The `loss_type` names. */
export const LOSS_NAMES: readonly string[] = registry.LOSS_NAMES;
/** The names TRL 1.13's DPOTrainer has. */
export const TRL_LOSSES: readonly string[] = registry.TRL_LOSSES;
