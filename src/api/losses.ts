// The DPO loss registry, read-only for library users: each loss by its `loss_type` name
// (train/losses.ts holds the definitions and the equations they implement).
export { LOSSES, LOSS_NAMES, TRL_LOSSES } from '../train/losses.js';
export type { LossFn, LossInputs, LossOptions, LossOutput } from '../train/losses.js';
