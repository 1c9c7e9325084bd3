// Liveness and readiness probe of the web-security overlay: an HTTPS GET with basic auth from inside the pod.
// httpGet probes cannot send a password that lives in a Secret, and with basic_auth_users configured every
// endpoint of the exporter asks for one, /-/healthy and /-/ready included.
// Usage: node probe.js PORT PATH AUTH_DIR — AUTH_DIR holds the files `username` and `password`.
// Exit 0 on HTTP 200, 1 otherwise. The certificate is not verified: this checks the server, not its identity,
// over loopback.
'use strict';
const fs = require('fs');
const https = require('https');

const [port, path, authDir] = process.argv.slice(2);
const read = (name) => fs.readFileSync(`${authDir}/${name}`, 'utf8').replace(/\r?\n$/, '');
const fail = () => process.exit(1);
https
  .get({ host: '127.0.0.1', port: Number(port), path, auth: `${read('username')}:${read('password')}`, rejectUnauthorized: false, timeout: 4000 }, (res) => {
    res.resume();
    process.exit(res.statusCode === 200 ? 0 : 1);
  })
  .on('timeout', fail)
  .on('error', fail);
