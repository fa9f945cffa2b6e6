// The addon's ICMPv6 functions: argument checks and error shapes. Nothing here sends a
// packet: the only sockets asked for are refused (a device that does not exist).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { loadNative } from '../../src/net/native.js';
import { Icmp6Socket, Icmp6SocketError } from '../../src/net/icmp6-socket.js';

const native = loadNative();
const missingIf = 'kbnosuchif0';

test('the addon exports the ICMPv6 functions beside the UDP ones', () => {
  for (const f of ['udpSocketOnDevice', 'closeFd', 'icmp6SocketOnDevice', 'icmp6Send', 'icmp6Receive'] as const) {
    assert.equal(typeof native[f], 'function', f);
  }
});

test('icmp6SocketOnDevice refuses bad arguments with typed errors', () => {
  const call = (...args: unknown[]) => () => (native.icmp6SocketOnDevice as (...a: unknown[]) => unknown)(...args);
  assert.throws(call(), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: /ifname must be a string/ });
  assert.throws(call(''), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  assert.throws(call('a-very-long-ifname'), { name: 'RangeError' });
  assert.throws(call('eth0', 'x'), { name: 'TypeError', message: /opts must be an object/ });
  assert.throws(call('eth0', { types: 133 }), { name: 'TypeError', message: /types must be an array/ });
  assert.throws(call('eth0', { types: [256] }), { name: 'RangeError', message: /0 to 255/ });
  assert.throws(call('eth0', { types: ['133'] }), { name: 'RangeError' });
  assert.throws(call('eth0', { groups: ['fe80::1'] }), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /multicast/ });
  assert.throws(call('eth0', { groups: ['ff02::2::'] }), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
});

test('a missing device gives ENODEV from if_nametoindex, and no descriptor leaks', () => {
  const before = readdirSync('/proc/self/fd').length;
  for (let i = 0; i < 100; i++) {
    assert.throws(() => native.icmp6SocketOnDevice(missingIf, { types: [133], groups: ['ff02::2'] }), { code: 'ENODEV', syscall: 'if_nametoindex', errno: -19 });
  }
  assert.equal(readdirSync('/proc/self/fd').length, before);
  assert.throws(() => Icmp6Socket.open(missingIf), (e: unknown) => e instanceof Icmp6SocketError && e.code === 'ENODEV' && e.message.includes(missingIf));
});

test('icmp6Send and icmp6Receive check their arguments before any system call', () => {
  const send = (...args: unknown[]) => () => (native.icmp6Send as (...a: unknown[]) => unknown)(...args);
  assert.throws(send(1, 1, 'ff02::1'), { name: 'TypeError', code: 'ERR_MISSING_ARGS' });
  assert.throws(send(-1, 1, 'ff02::1', Buffer.alloc(16)), { name: 'TypeError', message: /fd must be/ });
  assert.throws(send(1_000_000, 1, 'not-an-address', Buffer.alloc(16)), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(send(1_000_000, 1, 'ff02::1', 'text'), { message: /Buffer or Uint8Array/ });
  assert.throws(send(1_000_000, 1, 'ff02::1', Buffer.alloc(2)), { name: 'RangeError' });
  assert.throws(send(1_000_000, 1, 'ff02::1', Buffer.alloc(16)), { code: 'EBADF', syscall: 'sendto' });
  assert.throws(() => (native.icmp6Receive as (...a: unknown[]) => unknown)('3'), { name: 'TypeError' });
  assert.throws(() => native.icmp6Receive(1_000_000), { code: 'EBADF', syscall: 'recvmsg' });
});
