// Errors of the host's serial link, with stable codes and whether the device is out of reach.

export type LinkErrorCode =
  | 'DOSIS_ERR_LINK_LOST' // the transport closed (unplug) or the MCU fell silent with the command outstanding
  | 'DOSIS_ERR_LINK_TIMEOUT' // no ack after every retransmission
  | 'DOSIS_ERR_LINK_CLOSED' // the link was closed by its owner
  | 'DOSIS_ERR_LINK_NOT_READY' // send before HELLO completed
  | 'DOSIS_ERR_MCU_RESET' // the MCU reset (new boot id, or ERR:HELLO) while the command was outstanding
  | 'DOSIS_ERR_DEADLINE' // the command's deadline passed before it could be (re)transmitted; it may have run before
  | 'DOSIS_ERR_LINK_VERSION' // the MCU speaks another protocol version or catalogue
  | 'DOSIS_ERR_LINK_PROTOCOL'; // a well-framed answer that does not fit the catalogue

export class LinkError extends Error {
  readonly disconnected: boolean;

  constructor(
    readonly code: LinkErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'LinkError';
    this.disconnected = code === 'DOSIS_ERR_LINK_LOST' || code === 'DOSIS_ERR_LINK_NOT_READY' || code === 'DOSIS_ERR_LINK_CLOSED';
  }
}
