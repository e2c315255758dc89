// Options of `tsdpo reward` (TRL 1.13's RewardConfig names): the shared training options, less the
// truncation ones (the reward trainer drops over-long rows instead), plus its own. Documented once,
// here, on their defaults.
import { COMMON_OPTIONS, defaultsOf, type CommonConfig, type ConfigOf, type OptionSpec } from './config.js';

/** Shared options that mean nothing to the reward trainer (TRL's RewardConfig has none of them). */
const NOT_FOR_REWARD = ['max_prompt_length', 'max_completion_length', 'truncation_mode'] as const;

/** Options only `tsdpo reward` has. */
export const REWARD_OPTIONS = {
  center_rewards_coefficient: {
    type: 'number',
    default: 0,
    help:
      'adds this times mean((r_chosen + r_rejected)^2) to the loss, pushing rewards ' +
      'towards mean zero (Eq. 2, arXiv:2312.09244; 0.01 recommended; 0 = off, TRL None)',
  },
  margin_column: {
    type: 'string',
    default: 'margin',
    help:
      'optional numeric column: the loss becomes -log sigmoid(r_chosen ' +
      '- r_rejected - margin) when the first row has it',
  },
  disable_dropout: {
    type: 'bool',
    default: true,
    help: 'no dropout while training (TRL default); false keeps lora_dropout',
  },
} as const satisfies Record<string, OptionSpec>;

const common = Object.fromEntries(
  Object.entries(COMMON_OPTIONS).filter(([k]) => !(NOT_FOR_REWARD as readonly string[]).includes(k)),
) as Omit<typeof COMMON_OPTIONS, (typeof NOT_FOR_REWARD)[number]>;

/** Every flag of `tsdpo reward`, with RewardConfig's defaults where they differ from the shared ones. */
export const REWARD_SPECS = {
  ...common,
  ...REWARD_OPTIONS,
  learning_rate: { ...COMMON_OPTIONS.learning_rate, default: 1e-4 },
  max_length: {
    ...COMMON_OPTIONS.max_length,
    help: 'rows whose chosen or rejected sequence has more tokens are dropped, as TRL (0 = no limit)',
  },
  adapter: {
    ...COMMON_OPTIONS.adapter,
    help:
      'continue this PEFT adapter of the model (implies use_peft); its ' +
      "modules_to_save must hold the score head (PEFT's SEQ_CLS task)",
  },
  model_name_or_path: {
    ...COMMON_OPTIONS.model_name_or_path,
    help:
      'a *ForSequenceClassification folder to continue, or a causal LM folder ' +
      '(its lm_head is dropped and a new seeded one-label score head is made)',
  },
} as const satisfies Record<string, OptionSpec>;

export type RewardConfig = CommonConfig & ConfigOf<typeof REWARD_OPTIONS>;

/** A full RewardConfig from the flags' values (the shared options the command lacks keep their defaults). */
export function rewardConfig(values: ConfigOf<typeof REWARD_SPECS>): RewardConfig {
  return { ...defaultsOf(COMMON_OPTIONS), ...values };
}
