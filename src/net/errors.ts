// Kept apart from interface discovery so that the CLI can recognise it without loading execa.
export class InterfaceSelectionError extends Error {
  readonly code = 'KABOOT_INTERFACE_SELECTION';
  constructor(message: string, readonly missing: string[], readonly available: string[]) {
    super(message);
    this.name = 'InterfaceSelectionError';
  }
}
