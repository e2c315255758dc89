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

/** A `loss_type` name. */
export type LossName = registry.LossName;
/**
 * One registry entry: the loss function, whether it needs a reference model, its help line, whether TRL 1.13 has it.
 */
export type LossEntry = registry.LossEntry;

/**
 * Every loss by its `loss_type` name (TRL 1.13's, and tsdpo's own reference_free and simpo): `LOSSES.sigmoid.fn(inputs,
 * options)`.
 */
export const LOSSES: Readonly<Record<LossName, LossEntry>> = registry.LOSSES;
/** The `loss_type` names. */
export const LOSS_NAMES: readonly LossName[] = registry.LOSS_NAMES;
/** Whether a mix of losses needs reference log-probs (false only when every one is reference-free). */
export const needsReference = registry.needsReference;
/** The names TRL 1.13's DPOTrainer has. */
export const TRL_LOSSES: readonly string[] = registry.TRL_LOSSES;
