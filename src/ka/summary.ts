// The end-of-session lines, in the words of ka-deploy's log, and a table per node.
import type { SessionResult } from './coordinator.js';
import type { NodeResult } from './node.js';

const MB = 1024 * 1024;

export function formatSessionSummary(r: SessionResult): string {
  const lines = [
    `Total data sent = ${Math.round(r.total / MB)} Megs (${r.total} bytes), in ${(r.transferMs / 1000).toFixed(3)} seconds, throughput = ${(r.throughput / MB).toFixed(3)} Mbytes/second`,
    `The pipeline was emptied in ${(r.pipelineEmptiedMs / 1000).toFixed(3)} seconds`,
    `SHA-256 ${r.digest ?? '(none)'}`,
    'node  name                 address          state     bytes         MB/s    digest  exit  parent  moved',
  ];
  for (const n of r.nodes) {
    lines.push(
      [
        String(n.id).padEnd(5),
        n.name.slice(0, 20).padEnd(20),
        n.address.padEnd(16),
        n.state.padEnd(9),
        String(n.bytes).padEnd(13),
        (n.rate / MB).toFixed(1).padStart(7),
        (n.digestOk === null ? '-' : n.digestOk ? 'ok' : 'BAD').padStart(7),
        String(n.exitCode ?? '-').padStart(5),
        String(n.parent ?? '-').padStart(7),
        String(n.movedToTail).padStart(6),
        n.error ? `  ${n.error}` : '',
      ].join(' '),
    );
  }
  lines.push(r.ok ? 'All nodes finished with the right digest.' : 'Some nodes FAILED.');
  return lines.join('\n') + '\n';
}

export function formatNodeSummary(r: NodeResult): string {
  return (
    `Total data received = ${Math.round(r.bytes / MB)} Megs (${r.bytes} bytes), in ${(r.durationMs / 1000).toFixed(3)} seconds, throughput = ${(r.rate / MB).toFixed(3)} Mbytes/second\n` +
    `SHA-256 ${r.digest ?? '(none)'} ${r.digestOk ? 'ok' : 'NOT VERIFIED'}, consumer exit ${r.exitCode ?? '-'}${r.error ? `, error: ${r.error}` : ''}\n`
  );
}
