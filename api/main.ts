import { boot } from '../shared/boot.js';
import { startApi } from './server.js';

await boot('api', startApi);
