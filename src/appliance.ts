// The appliance: the node registry at the hub, and the DHCP, TFTP and HTTP services
// that read it. pixiecore's shape: one owner of every service, policy outside them.
import type { KabootConfig } from './config/schema.js';
import type { Logger } from './log.js';
import { NodeRegistry } from './nodes/registry.js';
import { loadOrCreateToken } from './http/auth.js';
import { buildHttpServer } from './http/server.js';
import { selectInterfaces, type Ipv4Interface } from './net/interfaces.js';
import { startTftpServer } from './tftp/server.js';
import { bootFileProvider } from './boot/tftp-files.js';
import { startDhcpServer, type DhcpServer } from './dhcp/server.js';
import { NodeLogs } from './nodes/node-logs.js';
import { DeploymentManager } from './deploy/manager.js';
import { startQuietAdvertiser } from './ra/service.js';

export interface Appliance {
  nodes: NodeRegistry;
  deployments: DeploymentManager;
  token: string;
  httpPort: number;
  interfaces: Ipv4Interface[];
  close(): Promise<void>;
}

export async function startAppliance(config: KabootConfig, logger: Logger): Promise<Appliance> {
  const nodes = new NodeRegistry(config.state_dir);
  const { token, file: tokenFile } = loadOrCreateToken(config.state_dir, config.api.token);
  const started = Date.now();
  const closers: (() => Promise<void> | void)[] = [];
  const interfaces = selectInterfaces(config.interfaces);
  const logs = new NodeLogs(config.state_dir);
  const deployments = await DeploymentManager.start({ stateDir: config.state_dir, imagesDir: config.images_dir, nodes, logs, logger: logger.child({ svc: 'deploy' }) });
  closers.push(() => deployments.close());
  logger.info({ interfaces: interfaces.map((i) => ({ name: i.name, addresses: i.addresses.map((a) => a.cidr) })) }, 'serving interfaces');

  let dhcp: DhcpServer | undefined;
  let httpPort = config.http.port;
  if (config.http.enabled) {
    const http = await buildHttpServer({
      logger,
      nodes,
      token,
      deployments,
      logs,
      imagesDir: config.images_dir,
      stateDir: config.state_dir,
      boot: config.boot,
      httpPort,
      leases: () => dhcp?.leases() ?? [],
      health: () => ({ uptime_s: Math.round((Date.now() - started) / 1000), dhcp_mode: config.dhcp.mode, dhcp: dhcp?.stats() }),
    });
    await http.listen({ port: config.http.port, host: config.http.address });
    const addr = http.server.address();
    if (addr && typeof addr === 'object') httpPort = addr.port;
    logger.info({ port: httpPort, api_token_file: tokenFile }, 'http listening');
    closers.push(() => http.close());
  }

  if (config.tftp.enabled) {
    const tftp = await startTftpServer({
      addresses: interfaces.flatMap((i) => i.addresses.map((a) => a.address)),
      port: config.tftp.port,
      provider: bootFileProvider({ imagesDir: config.images_dir, boot: config.boot, nodes, httpPort, tftp: config.tftp, deploymentOf: (mac) => deployments.kernelParams(mac), recruit: (mac) => deployments.recruit(mac) }),
      logger: logger.child({ svc: 'tftp' }),
      limits: config.tftp,
    });
    closers.push(() => tftp.close());
  }

  if (config.dhcp.mode !== 'off') {
    dhcp = await startDhcpServer({ config, interfaces, nodes, logger });
    closers.push(() => dhcp?.close());
  }

  if (config.ipv6_ra === 'quiet') {
    const ra = startQuietAdvertiser({ interfaces, logger });
    closers.push(() => ra.close());
  }

  logger.info({ http_port: httpPort }, 'kaboot ready');
  return {
    nodes,
    deployments,
    token,
    httpPort,
    interfaces,
    async close() {
      for (const c of closers.reverse()) await c();
    },
  };
}
