import type { Command } from 'commander';
import { configFromEnv } from '../../shared/lifecycle.ts';
import { SWITCHES, onOff, switchesKey } from '../../shared/switches/switch-names.ts';
import { allSwitches, readStoredSwitches } from '../../shared/switches/switch-store.ts';
import { columns } from './format.ts';
import { openRedis } from './session.ts';

/** `switches:list`: every degradation switch, its value in Redis (or its default), when and by whom it was set, and what off does. */
export function registerSwitchesList(program: Command): void {
  program
    .command('switches:list')
    .summary('list the degradation switches: on or off, since when, by whom, and what off does')
    .description(
      'list the degradation switches as Redis holds them (every process reads them within a second): each one on ' +
        '(the feature runs, the default) or off (it is shed), when and by whom it was last set, which processes read it ' +
        'and what off does. Set one with switches:set <name> on|off',
    )
    .option('--json', 'print one JSON document instead of the table')
    .addHelpText('after', '\nExamples:\n  npm run cli -- switches:list\n  npm run cli -- switches:list --json')
    .action(async (options: { json?: boolean }) => {
      const config = configFromEnv(process.env);
      const redis = await openRedis(config);
      let stored;
      try {
        stored = await readStoredSwitches(redis, switchesKey(config));
      } finally {
        redis.disconnect();
      }
      const switches = allSwitches(stored).map(({ name, on, stored: set }) => ({
        name,
        state: onOff(on),
        setAt: set?.at ? new Date(set.at).toISOString() : null,
        setBy: set?.by ?? null,
        readBy: SWITCHES[name].readBy,
        off: SWITCHES[name].off,
      }));
      if (options.json) {
        console.log(JSON.stringify({ key: switchesKey(config), switches, ignored: stored.invalid }, null, 2));
        return;
      }
      const rows = switches.map((s) => [s.name, s.state, s.setAt ? `${s.setAt.slice(0, 19).replace('T', ' ')}Z` : '(default)', s.setBy ?? '-', s.readBy, s.off]);
      for (const line of columns(['SWITCH', 'STATE', 'SINCE', 'BY', 'READ BY', 'WHEN OFF'], rows)) console.log(line);
      if (stored.invalid.length > 0) console.log(`ignored in ${switchesKey(config)} (not a switch set to on or off): ${stored.invalid.join(', ')}`);
    });
}
