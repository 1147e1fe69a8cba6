import { cleanupLeftovers } from './support/host';
import { cleanupZfsLeftovers } from './support/zfs';

/** Root hooks: every run starts by removing what a killed earlier run left behind. */
export const mochaHooks = {
  beforeAll(): void {
    if (process.getuid && process.getuid() !== 0) return;
    cleanupZfsLeftovers();
    cleanupLeftovers();
  },
};
