// A Transport over a real serial device (or a pseudo-terminal) through serialport and its readline parser.

import { SerialPort } from 'serialport';
import { ReadlineParser } from '@serialport/parser-readline';
import type { Transport } from '../../protocol/src/transport.js';

export class SerialOpenError extends Error {
  readonly code = 'DOSIS_ERR_SERIAL_OPEN';
  readonly disconnected = true;
}

export class SerialTransport implements Transport {
  #open = true;
  #closeHandlers: ((reason: string) => void)[] = [];

  private constructor(
    private readonly port: SerialPort,
    private readonly parser: ReadlineParser,
  ) {
    port.on('close', (err: (Error & { disconnected?: boolean }) | null) => this.#closed(err?.disconnected ? 'unplugged' : 'closed'));
    port.on('error', (err: Error) => this.#closed(`error: ${err.message}`));
  }

  /** Opens `path` at `baudRate`; rejects with SerialOpenError when the device is absent or busy. */
  static open(path: string, baudRate: number): Promise<SerialTransport> {
    return new Promise((resolve, reject) => {
      const port = new SerialPort({ path, baudRate, autoOpen: false, lock: false });
      // latin1: one byte is one char, so a corrupted byte stays one char and framing can reject it.
      const parser = port.pipe(new ReadlineParser({ delimiter: '\n', encoding: 'latin1' }));
      port.open((err) => {
        if (err) reject(new SerialOpenError(`cannot open ${path}: ${err.message}`));
        else resolve(new SerialTransport(port, parser));
      });
    });
  }

  get isOpen(): boolean {
    return this.#open;
  }

  write(data: string): void {
    if (this.#open) this.port.write(Buffer.from(data, 'latin1'));
  }

  onLine(handler: (line: string) => void): void {
    this.parser.on('data', (line: string) => handler(line));
  }

  onClose(handler: (reason: string) => void): void {
    this.#closeHandlers.push(handler);
  }

  close(): void {
    if (!this.#open) return;
    if (this.port.isOpen) this.port.close(() => undefined);
    this.#closed('closed');
  }

  #closed(reason: string): void {
    if (!this.#open) return;
    this.#open = false;
    for (const h of this.#closeHandlers) h(reason);
  }
}
