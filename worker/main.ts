import { boot } from '../shared/runtime/boot.js';
import { startWorker } from './worker.js';

await boot('worker', (config) => startWorker(config));
