// The ways the broadcast bench moves one file from the source to N receivers. Each
// start() launches the receivers (each a bash script under GNU time that ends in
// `openssl dgst -sha256 -r > DIGEST`, or for kaboot in a node that hashes the stream
// itself, and waits for every process it started), waits until they are ready, then
// launches the source and returns the moment it did: the run's time zero.
import { join } from 'node:path';
import type { ResultPromise } from 'execa';
import { announcePort, DEFAULT_DISCOVERY_PORT } from '../../src/ka/discovery.js';
import { DEFAULT_DATA_PORT } from '../../src/ka/node.js';
import { spawnTimed, waitConnected, waitListening, type BroadcastLab, type TimedProcess } from './ka-lab.js';

export interface RunContext {
  bl: BroadcastLab;
  /** the file to send (in /dev/shm) */
  file: string;
  size: number;
  /** scratch folder of this run: digests, time files, logs */
  dir: string;
  /** the kaboot repository (bin/kaboot.js) */
  repo: string;
}

export interface StartedRun {
  t0: number;
  receivers: TimedProcess[];
  digestFiles: string[];
  source: ResultPromise;
  /** the source's log (stderr/stdout), for the report when a run fails */
  sourceLog: string;
  /** kaboot: the session result (JSON) ka-server prints */
  resultFile?: string;
}

export interface Method {
  name: string;
  start(ctx: RunContext): Promise<StartedRun>;
}

const PORT = 5000;
/** where a ka-client looking for its session listens for the coordinator's announcement */
const KA_ANNOUNCE_PORT = announcePort(DEFAULT_DISCOVERY_PORT) as number;
/** kaboot-running: where the coordinator's stdin is fed from, on the source's loopback */
const FEED_PORT = 5001;
/** socat's default 8 KiB buffer costs a system call per 8 KiB; 128 KiB is what a careful user would pick. */
const SOCAT = 'socat -u -b 131072';
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function files(ctx: RunContext, i: number) {
  return {
    digest: join(ctx.dir, `r${i + 1}.sha256`),
    time: join(ctx.dir, `r${i + 1}.time`),
    log: join(ctx.dir, `r${i + 1}.log`),
  };
}

function hashInto(digest: string) {
  return `openssl dgst -sha256 -r > ${q(digest)}`;
}

function spawnSource(ctx: RunContext, script: string): { source: ResultPromise; sourceLog: string; t0: number } {
  const sourceLog = join(ctx.dir, 'source.log');
  const t0 = performance.now();
  const source = ctx.bl.lab.spawn(ctx.bl.source.ns, ['bash', '-c', `exec > ${q(sourceLog)} 2>&1; ${script}`], { stdin: 'ignore' });
  return { source, sourceLog, t0 };
}

/** Every receiver runs `command` (stderr to its log) into its hasher, timed. */
function spawnHashingReceivers(ctx: RunContext, command: (log: string) => string): { receivers: TimedProcess[]; digestFiles: string[] } {
  const receivers: TimedProcess[] = [];
  const digestFiles: string[] = [];
  ctx.bl.receivers.forEach((r, i) => {
    const f = files(ctx, i);
    digestFiles.push(f.digest);
    receivers.push(spawnTimed(ctx.bl.lab, r.ns, `${command(f.log)} | ${hashInto(f.digest)}; wait`, f.time));
  });
  return { receivers, digestFiles };
}

/** (c) The source opens one TCP connection per receiver and tee writes every block to each. */
export const fanout: Method = {
  name: 'fanout',
  async start(ctx) {
    const { bl } = ctx;
    const { receivers, digestFiles } = spawnHashingReceivers(ctx, (log) => `${SOCAT} TCP-LISTEN:${PORT},reuseaddr STDOUT 2>${q(log)}`);
    for (const r of bl.receivers) await waitListening(bl.lab, r.ns, PORT);
    const outs = bl.receivers.map((r) => `>(${SOCAT} STDIN TCP:${r.ip}:${PORT})`).join(' ');
    return { ...spawnSource(ctx, `tee ${outs} < ${q(ctx.file)} > /dev/null; wait`), receivers, digestFiles };
  },
};

/** (d) A plain TCP relay chain: each receiver listens, tees into its hasher and forwards to the next. */
export const chain: Method = {
  name: 'chain',
  async start(ctx) {
    const { bl } = ctx;
    const n = bl.receivers.length;
    const receivers: TimedProcess[] = new Array(n);
    const digestFiles: string[] = bl.receivers.map((_, i) => files(ctx, i).digest);
    // Last first, so that each forwarder connects to a listener that is already there.
    for (let i = n - 1; i >= 0; i--) {
      const r = bl.receivers[i]!;
      const f = files(ctx, i);
      const next = bl.receivers[i + 1];
      const listen = `${SOCAT} TCP-LISTEN:${PORT},reuseaddr STDOUT 2>>${q(f.log)}`;
      const script = next
        ? `fifo=${q(join(ctx.dir, `r${i + 1}.fifo`))}; mkfifo "$fifo"; ${hashInto(f.digest)} < "$fifo" & ` +
          `${listen} | tee "$fifo" | ${SOCAT} STDIN TCP:${next.ip}:${PORT},retry=50,interval=0.1 2>>${q(f.log)}; wait`
        : `${listen} | ${hashInto(f.digest)}; wait`;
      receivers[i] = spawnTimed(bl.lab, r.ns, script, f.time);
      await waitListening(bl.lab, r.ns, PORT);
      if (next) await waitConnected(bl.lab, r.ns, PORT);
    }
    const first = bl.receivers[0]!;
    return { ...spawnSource(ctx, `${SOCAT} FILE:${q(ctx.file)} TCP:${first.ip}:${PORT}`), receivers, digestFiles };
  },
};

/**
 * (b) udpcast from Debian. The sender waits for N receivers (--min-receivers), then streams
 * by multicast; --nokbd because nobody presses a key; the rest of its options are left at
 * their defaults (see UDPCAST_SENDER_OPTS for the ones tried).
 */
export function udpcast(senderOpts: string, receiverOpts: string): Method {
  return {
    name: 'udpcast',
    async start(ctx) {
      const { bl } = ctx;
      const { receivers, digestFiles } = spawnHashingReceivers(ctx, (log) => `udp-receiver --interface eth0 --nokbd ${receiverOpts} 2>${q(log)}`);
      const n = bl.receivers.length;
      return {
        ...spawnSource(ctx, `udp-sender --file ${q(ctx.file)} --interface eth0 --nokbd --min-receivers ${n} ${senderOpts}`),
        receivers,
        digestFiles,
      };
    },
  };
}

/**
 * (a) kaboot: ka-client in every receiver, looking for the session (UDP broadcast, as on
 * a real deploy network), then ka-server in the source reading the file (time zero); its
 * announcement reaches the waiting clients as it starts. Every node checks the stream's
 * SHA-256 itself (the protocol's END frame); the bench reads the digest each node
 * computed from its JSON result and compares it with the file's, as it does a hasher's
 * output for the other methods.
 * `consumer`: 'none' relays and checks only (the receiver's own check is its hash);
 * 'openssl' also feeds `openssl dgst` as the node's consumer, so each node hashes twice.
 * `coordinator`: 'starts' runs ka-server at time zero, reading the file; 'running' starts
 * it before time zero, as inside `kaboot serve`, where sessions run in the appliance's
 * long-lived process: it reads its stdin, the clients join and the chain is linked, and
 * at time zero `socat` starts feeding it the file over loopback TCP (a stream source, so
 * the coordinator also writes the stream to its spool).
 */
function kabootMethod(name: string, consumer: 'none' | 'openssl', coordinator: 'starts' | 'running' = 'starts'): Method {
  return {
    name,
    async start(ctx) {
      const { bl } = ctx;
      const bin = join(ctx.repo, 'bin/kaboot.js');
      const session = `bench${process.pid}`;
      const secret = `--secret ${q(`bench-${process.pid}-${Date.now()}`)}`;
      const n = bl.receivers.length;
      const resultFile = join(ctx.dir, 'session.json');
      const receivers: TimedProcess[] = [];
      const digestFiles: string[] = [];
      bl.receivers.forEach((r, i) => {
        const f = files(ctx, i);
        const client = `node ${q(bin)} ka-client -s ${session} ${secret}`;
        if (consumer === 'openssl') {
          digestFiles.push(f.digest);
          receivers.push(spawnTimed(bl.lab, r.ns, `${client} -e ${q(hashInto(f.digest))} >${q(f.log)} 2>&1; wait`, f.time));
        } else {
          const result = join(ctx.dir, `r${i + 1}.json`);
          digestFiles.push(result);
          receivers.push(spawnTimed(bl.lab, r.ns, `${client} >${q(result)} 2>${q(f.log)}; wait`, f.time));
        }
      });
      // as the other methods' receivers listen before their source starts, these look for
      // their session first: the coordinator's announcement finds them as it starts
      await Promise.all(bl.receivers.map((r) => waitListening(bl.lab, r.ns, KA_ANNOUNCE_PORT, 10_000, 'udp')));
      if (coordinator === 'starts') {
        const started = spawnSource(ctx, `node ${q(bin)} ka-server -s ${session} -n ${n} -f ${q(ctx.file)} ${secret} > ${q(resultFile)}`);
        return { ...started, receivers, digestFiles, resultFile };
      }
      const server = spawnSource(
        ctx,
        `${SOCAT} TCP-LISTEN:${FEED_PORT},bind=127.0.0.1,reuseaddr STDOUT | node ${q(bin)} ka-server -s ${session} -n ${n} --spool ${q(ctx.dir)} ${secret} > ${q(resultFile)}`,
      );
      // every node holds its data link (to the source or to its parent): the chain is ready
      await Promise.all(bl.receivers.map((r) => waitConnected(bl.lab, r.ns, DEFAULT_DATA_PORT)));
      const t0 = performance.now();
      bl.lab.spawn(bl.source.ns, ['bash', '-c', `${SOCAT} FILE:${q(ctx.file)} TCP:127.0.0.1:${FEED_PORT},retry=50,interval=0.1`], { stdin: 'ignore', reject: false });
      return { source: server.source, sourceLog: server.sourceLog, t0, receivers, digestFiles, resultFile };
    },
  };
}

export const kaboot = kabootMethod('kaboot', 'none');
export const kabootOpenssl = kabootMethod('kaboot-openssl', 'openssl');
export const kabootRunning = kabootMethod('kaboot-running', 'none', 'running');
