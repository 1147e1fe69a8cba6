import { startCluster, type Cluster, type StartClusterOptions } from './harness';
import { FerryCluster } from './ferry-cluster';

/*
 * The set-up and tear-down every cluster test file shares: test hosts and ferry on them for one
 * describe, stopped and removed after it, and ferry's logs printed when one of its tests fails.
 */

/** How useFerryCluster brings the hosts and ferry up: the test hosts' options, and ferry's. */
export interface UseFerryClusterOptions extends StartClusterOptions {
  /** Brings the hosts up (default startCluster; failures.test.ts waits while another run owns the machine). */
  startCluster?: (opts: StartClusterOptions) => Promise<Cluster>;
  /** Every agent's settings, deep-merged over the defaults (FerryCluster's `settings`). */
  settings?: Record<string, unknown>;
  /** Control's own config (FerryCluster's `controlSettings`), kept for its restarts. */
  controlSettings?: Record<string, unknown>;
  /**
   * Starts ferry (default: `ferry.start()`, control then each host's agent). Here go per-host
   * agent settings (startControl, then startAgentWith for each host) and steps that must follow
   * the start, such as waiting until Swarm knows the plugin.
   */
  start?: (ferry: FerryCluster, cluster: Cluster) => Promise<void>;
  /**
   * Stops ferry before the hosts are torn down (default: `ferry.stop()`, its failure ignored: the
   * teardown ends whatever is left). Throwing here skips the teardown.
   */
  stop?: (ferry: FerryCluster, cluster: Cluster) => Promise<void>;
  /** Lines of each log printed when a test fails (default: what FerryCluster.logs prints). */
  logLines?: number;
}

/** The hosts and ferry of one describe: read them in hooks and tests, once its `before` ran. */
export interface FerryClusterSuite {
  readonly cluster: Cluster;
  readonly ferry: FerryCluster;
}

/**
 * Registers, in the describe that calls it, a `before` that starts test hosts and ferry on them, an
 * `after` that stops ferry and tears the hosts down, and an `afterEach` that prints ferry's logs when
 * a test failed. Hooks of the describe registered before this call run before these (mocha runs a
 * suite's hooks in the order they were registered); those registered after it, after them.
 */
export function useFerryCluster(opts: UseFerryClusterOptions = {}): FerryClusterSuite {
  const {
    startCluster: bringUp = startCluster,
    settings,
    controlSettings,
    start = (f: FerryCluster) => f.start(),
    stop = (f: FerryCluster) => f.stop().catch(() => undefined),
    logLines,
    ...hostOpts
  } = opts;
  let cluster: Cluster | undefined;
  let ferry: FerryCluster | undefined;

  before(async function () {
    cluster = await bringUp(hostOpts);
    ferry = new FerryCluster(cluster, settings);
    if (controlSettings) ferry.controlSettings = controlSettings;
    await start(ferry, cluster);
  });
  after(async function () {
    if (ferry) await stop(ferry, ferry.cluster);
    await cluster?.teardown();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && ferry) console.log(ferry.logs(logLines));
  });

  return {
    get cluster(): Cluster {
      if (!cluster) throw new Error('useFerryCluster: no cluster yet; read it in a hook or test, after its before hook ran');
      return cluster;
    },
    get ferry(): FerryCluster {
      if (!ferry) throw new Error('useFerryCluster: no ferry yet; read it in a hook or test, after its before hook ran');
      return ferry;
    },
  };
}
