import { InvalidArgumentError, type Command } from 'commander';
import { hostname, userInfo } from 'node:os';
import { ApiError } from '../../shared/errors/index.ts';
import { configFromEnv } from '../../shared/lifecycle.ts';
import { SWITCHES, SWITCH_NAMES, onOff, parseSwitchName, parseSwitchValue, switchesChannel, switchesKey, type SwitchName } from '../../shared/switches/switch-names.ts';
import { writeSwitch } from '../../shared/switches/switch-store.ts';
import { openRedis } from './session.ts';

/**
 * `switches:set <name> on|off`: flips a degradation switch for the whole fleet. Written to Redis
 * and announced; every process applies it within a second and logs it. A bad name or value is
 * refused with its code before Redis is touched.
 */
export function registerSwitchesSet(program: Command): void {
  program
    .command('switches:set')
    .summary('turn a degradation switch on or off for every process (within a second)')
    .description(
      'turn a degradation switch on (the feature runs, the default) or off (it is shed), for every process of this ' +
        'QUEUE_PREFIX: written to Redis and announced; each process applies it within a second and logs the change. ' +
        'switches:list says what each one does when off',
    )
    .argument('<name>', `the switch: ${SWITCH_NAMES.join(', ')}`, coded(parseSwitchName))
    .argument('<value>', 'on (the feature runs) or off (it is shed)', coded(parseSwitchValue))
    .addHelpText('after', '\nExamples:\n  npm run cli -- switches:set notifications off\n  npm run cli -- switches:set notifications on')
    .action(async (name: SwitchName, on: boolean) => {
      const config = configFromEnv(process.env);
      const redis = await openRedis(config);
      let result;
      try {
        const by = `${userInfo().username}@${hostname()}`;
        result = await writeSwitch(redis, { key: switchesKey(config), channel: switchesChannel(config) }, { name, on, by });
      } finally {
        redis.disconnect();
      }
      if (!result.changed) {
        console.log(`switch ${name} is already ${onOff(on)}${result.before?.at ? ` (since ${new Date(result.before.at).toISOString()})` : ''}: nothing changed`);
        return;
      }
      const was = result.before ? onOff(result.before.on) : 'on (the default)';
      console.log(
        `switch ${name}: ${was} -> ${onOff(on)} at ${new Date(result.at).toISOString()}; ` +
          `${SWITCHES[name].readBy} processes apply it within a second. ${on ? 'On: the feature runs again' : `Off: ${SWITCHES[name].off}`}`,
      );
    });
}

/** A parser whose refusal carries its registered code (UNKNOWN_SWITCH, INVALID_SWITCH_VALUE) for commander to print. */
function coded<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (error) {
      if (error instanceof ApiError) throw new InvalidArgumentError(`${error.code}: ${error.message}`);
      throw error;
    }
  };
}
