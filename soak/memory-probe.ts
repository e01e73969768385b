// Preloaded into the soaked server (node --import): answers the soak's IPC request with the
// server's own memory figures. The server itself (lambda/server.ts) runs unchanged.

process.on('message', (message) => {
  if (message === 'memory') process.send?.({ memory: process.memoryUsage() });
});
