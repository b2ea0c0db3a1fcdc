import { boot } from '../shared/boot.js';
import { startWorker } from './worker.js';

await boot('worker', (config) => startWorker(config));
