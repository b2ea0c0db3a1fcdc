import express from 'express';
import { loadConfig } from '../../shared/runtime/config.js';

/** The ceiling: Express answering 202 with a small JSON body and doing nothing else. */
const app = express();
app.disable('x-powered-by');
const body = { transferId: '00000000-0000-4000-8000-000000000000', status: 'accepted', statusUrl: '/transfers/00000000-0000-4000-8000-000000000000' };
app.post('/transfer', (_req, res) => {
  res.status(202).json(body);
});
const server = app.listen(loadConfig().port, () => {
  process.stdout.write(`${JSON.stringify({ message: 'listening', port: (server.address() as { port: number }).port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
