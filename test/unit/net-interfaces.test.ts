import { test } from 'node:test';
import assert from 'node:assert/strict';
import type os from 'node:os';
import { describeIpv4, ipv4Interfaces, selectInterfaces, interfaceForAddress, InterfaceSelectionError, type InterfaceTable } from '../../src/net/interfaces.js';

const v4 = (address: string, netmask: string, mac: string, internal = false): os.NetworkInterfaceInfo => ({
  address, netmask, mac, internal, family: 'IPv4', cidr: null,
});
const v6 = (address: string, mac: string): os.NetworkInterfaceInfo => ({
  address, netmask: 'ffff:ffff:ffff:ffff::', mac, internal: false, family: 'IPv6', cidr: null, scopeid: 0,
});

// Shaped like os.networkInterfaces() on a two-NIC appliance.
const table: InterfaceTable = {
  lo: [v4('127.0.0.1', '255.0.0.0', '00:00:00:00:00:00', true)],
  eth1: [v4('192.168.20.1', '255.255.255.0', 'AA:BB:CC:00:00:02'), v4('192.168.21.1', '255.255.255.128', 'AA:BB:CC:00:00:02')],
  eth0: [v6('fe80::1', '52:54:00:00:00:01'), v4('10.1.0.1', '255.255.0.0', '52:54:00:00:00:01')],
  wg0: [v6('fd00::1', '00:00:00:00:00:00')],
};

test('describeIpv4 computes prefix, network and broadcast', () => {
  assert.deepEqual(describeIpv4('10.1.2.3', '255.255.0.0'), {
    address: '10.1.2.3', netmask: '255.255.0.0', prefixLength: 16, cidr: '10.1.2.3/16', network: '10.1.0.0', broadcast: '10.1.255.255',
  });
  assert.equal(describeIpv4('192.168.21.1', '255.255.255.128').broadcast, '192.168.21.127');
  assert.equal(describeIpv4('172.16.5.9', '255.255.255.252').broadcast, '172.16.5.11');
});

test('describeIpv4: /31 and /32 have no directed broadcast', () => {
  assert.equal(describeIpv4('10.0.0.0', '255.255.255.254').broadcast, '255.255.255.255');
  assert.equal(describeIpv4('10.0.0.7', '255.255.255.255').broadcast, '255.255.255.255');
  assert.equal(describeIpv4('10.0.0.7', '255.255.255.255').network, '10.0.0.7');
});

test('describeIpv4 refuses a non-contiguous netmask', () => {
  assert.throws(() => describeIpv4('10.0.0.1', '255.0.255.0'), /not contiguous/);
});

test('ipv4Interfaces keeps IPv4 interfaces, drops loopback and IPv6-only ones, sorts by name', () => {
  const list = ipv4Interfaces(table);
  assert.deepEqual(list.map((i) => i.name), ['eth0', 'eth1']);
  const [eth0, eth1] = list;
  assert.equal(eth0?.mac, '52:54:00:00:00:01');
  assert.deepEqual(eth0?.addresses.map((a) => a.cidr), ['10.1.0.1/16']);
  assert.equal(eth1?.mac, 'aa:bb:cc:00:00:02');
  assert.deepEqual(eth1?.addresses.map((a) => [a.cidr, a.broadcast]), [['192.168.20.1/24', '192.168.20.255'], ['192.168.21.1/25', '192.168.21.127']]);
});

test('ipv4Interfaces of an empty or loopback-only table is empty', () => {
  assert.deepEqual(ipv4Interfaces({}), []);
  assert.deepEqual(ipv4Interfaces({ lo: table.lo }), []);
});

test('selectInterfaces without configuration serves every IPv4 interface', () => {
  assert.deepEqual(selectInterfaces(undefined, ipv4Interfaces(table)).map((i) => i.name), ['eth0', 'eth1']);
});

test('selectInterfaces keeps the configured order and drops duplicates', () => {
  assert.deepEqual(selectInterfaces(['eth1', 'eth0', 'eth1'], ipv4Interfaces(table)).map((i) => i.name), ['eth1', 'eth0']);
});

test('selectInterfaces names a missing interface and lists the existing ones', () => {
  const err = catchError(() => selectInterfaces(['eth0', 'eth9'], ipv4Interfaces(table)));
  assert.ok(err instanceof InterfaceSelectionError);
  assert.deepEqual(err.missing, ['eth9']);
  assert.deepEqual(err.available, ['eth0', 'eth1']);
  assert.match(err.message, /interface eth9 is not present or without an IPv4 address/);
  assert.match(err.message, /eth0 \(10\.1\.0\.1\/16\), eth1 \(192\.168\.20\.1\/24, 192\.168\.21\.1\/25\)/);
});

test('selectInterfaces: an interface with only IPv6 counts as missing', () => {
  const err = catchError(() => selectInterfaces(['wg0', 'lo'], ipv4Interfaces(table)));
  assert.ok(err instanceof InterfaceSelectionError);
  assert.deepEqual(err.missing, ['wg0', 'lo']);
  assert.match(err.message, /interfaces wg0, lo are not present/);
});

test('selectInterfaces refuses an empty list and a host with nothing to serve', () => {
  assert.throws(() => selectInterfaces([], ipv4Interfaces(table)), /empty list serves nothing/);
  assert.throws(() => selectInterfaces(undefined, []), (e) => e instanceof InterfaceSelectionError && /no interface to serve: this host has no interface with an IPv4 address/.test(e.message));
});

test('interfaceForAddress finds the interface whose subnet holds an address', () => {
  const list = ipv4Interfaces(table);
  assert.equal(interfaceForAddress(list, '10.1.200.7')?.iface.name, 'eth0');
  assert.equal(interfaceForAddress(list, '192.168.21.100')?.address.cidr, '192.168.21.1/25');
  assert.equal(interfaceForAddress(list, '192.168.21.200'), undefined);
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  assert.fail('expected an error');
}
