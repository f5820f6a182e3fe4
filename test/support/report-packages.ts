/**
 * Preloaded with `node --import`: at exit, prints to stderr one line naming every npm package the
 * process loaded (`packages loaded: a b c`), so a test can tell what a command pulled in.
 */
import { registerHooks } from 'node:module';

const packages = new Set<string>();
registerHooks({
  load(url, context, next) {
    const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    if (match) packages.add(match[1]!);
    return next(url, context);
  },
});
process.on('exit', () => process.stderr.write(`packages loaded: ${[...packages].sort().join(' ')}\n`));
