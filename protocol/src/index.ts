// The serial protocol between the robot's host and its microcontroller: framing, CRC, catalogue. Pure code, no I/O.
export * from './crc16.js';
export * from './frame.js';
export * from './catalogue.js';
export * from './clock.js';
