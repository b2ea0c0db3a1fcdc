import cluster from 'node:cluster';
import { boot } from '../shared/runtime/boot.js';
import { superviseApiProcesses } from './api-processes.js';
import { startApi } from './server.js';

// API_PROCESSES > 1: this process supervises that many API processes, each of which runs this file again.
await boot('api', (config) => (config.apiProcesses > 1 && cluster.isPrimary ? superviseApiProcesses(config) : startApi(config)));
