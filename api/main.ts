import { boot } from '../shared/runtime/boot.js';
import { startApi } from './server.js';

await boot('api', startApi);
