// KA sessions: the relay-chain broadcast (docs/ka-protocol.md). The coordinator side
// is startSession, the node side joinSession; the rest is exported for tests and tools.
export { startSession, type Session, type SessionOptions, type SessionResult, type SessionStats, type SessionEvent, type NodeSummary, type SourceSpec } from './coordinator.js';
export { joinSession, type JoinOptions, type NodeResult, DEFAULT_CONTROL_PORT, DEFAULT_DATA_PORT, DEFAULT_RING_BYTES } from './node.js';
export { discover, DEFAULT_DISCOVERY_PORT } from './discovery.js';
export { formatSessionSummary, formatNodeSummary } from './summary.js';
