#!/usr/bin/env node
// An independent client nobody on the riskgate side wrote the stubs of:
// @grpc/grpc-js with riskgate.proto loaded at run time by
// @grpc/proto-loader calls a real server — Evaluate, ReportOutcome, the
// standard health service and reflection — over plain text and over TLS
// (a throw-away certificate made with openssl), and exits non-zero on any
// mismatch.
//
// Usage: node check_client.js PATH/TO/riskgate   (starts its own servers)
'use strict';

const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const ROOT = path.resolve(__dirname, '..', '..');
const OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

function load(file, includeDirs) {
  return grpc.loadPackageDefinition(loader.loadSync(file, { ...OPTIONS, includeDirs }));
}

const riskgate = load('riskgate/v1/riskgate.proto', [path.join(ROOT, 'proto')]).riskgate.v1;
const moduleDir = (name) => path.dirname(require.resolve(`${name}/package.json`));
const health = load(path.join(moduleDir('grpc-health-check'), 'proto/health/v1/health.proto'), []).grpc.health.v1;
const reflection = load(
  path.join(moduleDir('@grpc/reflection'), 'build/proto/grpc/reflection/v1/reflection.proto'),
  [],
).grpc.reflection.v1;

let passed = 0;
let failed = 0;
function check(name, ok, detail) {
  if (ok) {
    passed += 1;
    console.log(`ok   ${name}`);
  } else {
    failed += 1;
    console.log(`FAIL ${name} ${detail === undefined ? '' : detail}`);
  }
}

// Starts `riskgate serve` on a free port; resolves with the process and the
// address it logged.
function start(binary, env) {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      binary,
      ['serve', '--listen', '127.0.0.1:0', '--metrics-listen', 'off', '--journal', 'off', '--log-format', 'json'],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const timer = setTimeout(() => reject(new Error('the server did not start in 20 s')), 20000);
    const lines = readline.createInterface({ input: proc.stderr });
    lines.on('line', (line) => {
      let event;
      try {
        event = JSON.parse(line);
      } catch (_) {
        return;
      }
      if (event.message === 'riskgate serving') {
        clearTimeout(timer);
        resolve({ proc, addr: event.listen });
      }
    });
    proc.on('exit', (code) => reject(new Error(`the server exited with ${code} before serving`)));
  });
}

function stop(proc) {
  return new Promise((resolve) => {
    proc.removeAllListeners('exit');
    proc.on('exit', (code) => resolve(code));
    proc.kill('SIGTERM');
  });
}

const unary = (client, method, request) =>
  new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + 5000 }, (err, answer) => (err ? reject(err) : resolve(answer)));
  });

// One reflection request on its own stream.
function reflect(client, request) {
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo({ deadline: Date.now() + 5000 });
    call.on('data', (answer) => {
      resolve(answer);
      call.end();
    });
    call.on('error', reject);
    call.write(request);
  });
}

async function exercise(label, addr, credentials, options) {
  const risk = new riskgate.RiskService(addr, credentials, options);
  const attempt = {
    user_id: `node-alice-${label}`,
    channel: 'CHANNEL_WEB',
    ip_address: '198.51.100.7',
    device: {
      device_id: `node-device-${label}`,
      user_agent: 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0',
    },
    credential_result: 'CREDENTIAL_RESULT_VALID',
  };
  const first = await unary(risk, 'Evaluate', attempt);
  check(`${label}: a clean first login is allowed`, first.action === 'ACTION_ALLOW', JSON.stringify(first));
  check(
    `${label}: the decision explains itself`,
    first.reasons.some((r) => r.code === 'new_user'),
    JSON.stringify(first.reasons),
  );
  check(`${label}: the score is in [0, 1]`, first.score >= 0 && first.score <= 1, first.score);
  check(`${label}: versions are named`, first.policy_version !== '' && first.model_version !== '');
  const taught = await unary(risk, 'ReportOutcome', {
    decision_id: first.decision_id,
    outcome: 'OUTCOME_LOGIN_SUCCEEDED',
  });
  check(`${label}: a verified success teaches the profile`, taught.profile_updated === true, JSON.stringify(taught));
  const second = await unary(risk, 'Evaluate', attempt);
  check(`${label}: the known device scores lower`, second.score < first.score, `${second.score} vs ${first.score}`);
  try {
    await unary(risk, 'Evaluate', { ...attempt, ip_address: '999.1.1.1' });
    check(`${label}: a bad IP address is refused`, false);
  } catch (e) {
    check(
      `${label}: a bad IP address is INVALID_ARGUMENT naming the field`,
      e.code === grpc.status.INVALID_ARGUMENT && e.details.includes('`ip_address`'),
      `${e.code} ${e.details}`,
    );
  }
  try {
    await unary(risk, 'ReportOutcome', { decision_id: 'forged', outcome: 'OUTCOME_LOGIN_SUCCEEDED' });
    check(`${label}: a forged decision id is refused`, false);
  } catch (e) {
    check(
      `${label}: a forged decision id is INVALID_ARGUMENT`,
      e.code === grpc.status.INVALID_ARGUMENT && e.details.includes('`decision_id`'),
      `${e.code} ${e.details}`,
    );
  }
  risk.close();

  const checker = new health.Health(addr, credentials, options);
  for (const service of ['', 'riskgate.v1.RiskService']) {
    const h = await unary(checker, 'Check', { service });
    check(`${label}: health of ${service || '(server)'} is SERVING`, h.status === 'SERVING', JSON.stringify(h));
  }
  checker.close();

  const refl = new reflection.ServerReflection(addr, credentials, options);
  const listed = await reflect(refl, { list_services: '' });
  const names = listed.list_services_response.service.map((s) => s.name);
  check(
    `${label}: reflection lists the services`,
    names.includes('riskgate.v1.RiskService') && names.includes('grpc.health.v1.Health'),
    JSON.stringify(names),
  );
  const files = await reflect(refl, { file_containing_symbol: 'riskgate.v1.RiskService' });
  const protos = files.file_descriptor_response ? files.file_descriptor_response.file_descriptor_proto : [];
  const raw = protos.map((b) => Buffer.from(b).toString('latin1'));
  check(
    `${label}: reflection serves riskgate.proto`,
    raw.some((p) => p.includes('riskgate/v1/riskgate.proto') && p.includes('EvaluateRequest')),
    `${protos.length} files`,
  );
  refl.close();
}

// A throw-away self-signed certificate, made with openssl.
function certificate(dir) {
  const cert = path.join(dir, 'server.pem');
  const key = path.join(dir, 'server.key');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=riskgate-node-check',
    '-addext', 'subjectAltName=DNS:riskgate.test,IP:127.0.0.1',
  ], { stdio: 'ignore' });
  return { cert, key };
}

async function main() {
  const binary = process.argv[2];
  if (!binary) {
    console.error('usage: node check_client.js PATH/TO/riskgate');
    process.exit(2);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'riskgate-node-'));
  try {
    const plain = await start(binary, {});
    try {
      await exercise('plain', plain.addr, grpc.credentials.createInsecure(), {});
    } finally {
      const code = await stop(plain.proc);
      check('plain: the server exits 0 on SIGTERM', code === 0, `exit ${code}`);
    }

    const { cert, key } = certificate(dir);
    const tls = await start(binary, { RISKGATE_TLS_CERT: cert, RISKGATE_TLS_KEY: key });
    try {
      // The certificate's name, not the IP address (Node refuses IP SNI).
      const name = { 'grpc.ssl_target_name_override': 'riskgate.test', 'grpc.default_authority': 'riskgate.test' };
      await exercise('tls', tls.addr, grpc.credentials.createSsl(fs.readFileSync(cert)), name);
      // A client without TLS gets no answer from the TLS port.
      const risk = new riskgate.RiskService(tls.addr, grpc.credentials.createInsecure());
      try {
        await unary(risk, 'Evaluate', { user_id: 'x', channel: 'CHANNEL_WEB', ip_address: '198.51.100.7' });
        check('tls: plain text is refused', false);
      } catch (e) {
        check('tls: plain text is refused', e.code === grpc.status.UNAVAILABLE, `${e.code} ${e.details}`);
      }
      risk.close();
    } finally {
      const code = await stop(tls.proc);
      check('tls: the server exits 0 on SIGTERM', code === 0, `exit ${code}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`node-client: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
