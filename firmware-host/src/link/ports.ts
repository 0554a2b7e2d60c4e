// Lists the serial ports the system knows; where it cannot list them, says why instead of throwing.

import { SerialPort } from 'serialport';

export type PortInfo = { path: string; manufacturer?: string | undefined; serialNumber?: string | undefined; vendorId?: string | undefined; productId?: string | undefined };

export async function listPorts(): Promise<{ ok: true; ports: PortInfo[] } | { ok: false; reason: string }> {
  try {
    const ports = await SerialPort.list();
    return { ok: true, ports: ports.map((p) => ({ path: p.path, manufacturer: p.manufacturer, serialNumber: p.serialNumber, vendorId: p.vendorId, productId: p.productId })) };
  } catch (err) {
    return { ok: false, reason: `the system cannot list serial ports here: ${(err as Error).message}` };
  }
}
