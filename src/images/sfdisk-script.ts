// A desc plan as an sfdisk script. Every line names its partition number ("part5 : ...")
// because sfdisk numbers unnamed lines in order, which would make a logical partition
// after a fixed-size extended one a primary. sfdisk takes the number from the trailing
// digits of the name, whatever the device is called.
import type { DescPlan } from './desc.js';

export interface SfdiskScriptOptions {
  /** prefix of the line names; the device path reads best in logs */
  device?: string;
}

export function renderSfdiskScript(plan: DescPlan, opts: SfdiskScriptOptions = {}): string {
  const prefix = opts.device ? `${opts.device}${/\d$/.test(opts.device) ? 'p' : ''}` : 'part';
  const lines = [`label: ${plan.label}`, 'unit: sectors', ''];
  for (const p of plan.partitions) {
    const fields: string[] = [];
    if (p.size !== 'fill') fields.push(`size=${p.size}MiB`);
    else fields.push('size=+');
    fields.push(`type=${p.typeCode}`);
    if (p.bootable) fields.push(plan.label === 'dos' ? 'bootable' : 'attrs="LegacyBIOSBootable"');
    if (plan.label === 'gpt' && p.fsLabel) fields.push(`name="${p.fsLabel}"`);
    lines.push(`${prefix}${p.number} : ${fields.join(', ')}`);
  }
  return lines.join('\n') + '\n';
}
