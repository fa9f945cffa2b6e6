// ACL files hold getfacl text. GNU tar stores ACL entries with user and group names even
// with --numeric-owner, and setfacl --restore on a node would look those names up in the
// node's environment, not the clone's: so names become the golden's own numeric ids,
// taken from its etc/passwd and etc/group.

/** name → id from a passwd or group file */
export function parseIdFile(text: string): Map<string, number> {
  const ids = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    if (name && id !== undefined && /^[0-9]+$/.test(id) && !ids.has(name)) ids.set(name, Number(id));
  }
  return ids;
}

export function numericAcl(text: string, users: Map<string, number>, groups: Map<string, number>): { text: string; unknown: string[] } {
  const unknown = new Set<string>();
  const out = text.split('\n').map((line) => {
    const m = /^(default:)?(user|group):([^:]+):(.*)$/.exec(line);
    if (!m || /^[0-9]+$/.test(m[3]!)) return line;
    const id = (m[2] === 'user' ? users : groups).get(m[3]!);
    if (id === undefined) {
      unknown.add(`${m[2]} ${m[3]}`);
      return line;
    }
    return `${m[1] ?? ''}${m[2]}:${id}:${m[4]}`;
  });
  return { text: out.join('\n'), unknown: [...unknown] };
}
