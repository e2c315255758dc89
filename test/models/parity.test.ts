// Parity with Hugging Face transformers on the CPU backend: the suite of parity-suite.ts.
import { before } from 'node:test';
import { initEngine } from '../../src/engine.js';
import { parityTests } from './parity-suite.js';

before(async () => {
  await initEngine({ device: 'cpu' });
});

parityTests({ label: 'cpu' });
