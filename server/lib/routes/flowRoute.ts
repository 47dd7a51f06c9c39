// POST /v1/flow: two frames in, the flow out. Frames come as a multipart form (encoded images, or raw pixels with
// their size) or as JSON with base64 images; options come from the query string or the body's fields.
import type { MultipartFile, MultipartValue } from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FlowError, ImageLike } from 'torch-optical-flow';
import { formatBytes } from 'torch-optical-flow/internal';
import type { ServerContext } from '../FlowServer';
import { ACCEPTED_TYPES, encodeFlow, FLOW_FORMATS, FlowFormat } from '../flowEncoding';
import { decodeImage, rawImage } from '../imageDecoding';
import { ModelPool, PooledModel } from '../ModelPool';
import { ServiceError } from '../ServiceError';
import { integerField } from './integerField';

const FRAME_FIELDS = ['frameA', 'frameB'] as const;
const TEXT_FIELDS = ['model', 'weights', 'iterations', 'format', 'width', 'height', 'pixelFormat'] as const;
type TextField = typeof TEXT_FIELDS[number];

interface FlowQuery {
  model?: string;
  weights?: string;
  iterations?: number;
  format?: FlowFormat;
}

interface FlowJsonBody extends FlowQuery {
  frameA: string;
  frameB: string;
}

/** The request's frames (still encoded, or raw) and its text fields. */
interface Upload {
  frames: Partial<Record<typeof FRAME_FIELDS[number], Buffer>>;
  fields: Partial<Record<TextField, string>>;
}

async function readMultipart(request: FastifyRequest): Promise<Upload> {
  const upload: Upload = { frames: {}, fields: {} };
  for await (const part of request.parts()) {
    if (part.type === 'file') {
      const file = part as MultipartFile;
      if (!(FRAME_FIELDS as readonly string[]).includes(file.fieldname)) {
        file.file.resume();
        throw new ServiceError('ERR_BAD_REQUEST', `unexpected file field '${file.fieldname}'; the frames go in fields frameA and frameB`);
      }
      upload.frames[file.fieldname as 'frameA'] = await file.toBuffer();
    } else {
      const field = part as MultipartValue<unknown>;
      if (!(TEXT_FIELDS as readonly string[]).includes(field.fieldname)) {
        throw new ServiceError('ERR_BAD_REQUEST', `unexpected field '${field.fieldname}' (fields: ${TEXT_FIELDS.join(', ')})`);
      }
      upload.fields[field.fieldname as TextField] = String(field.value);
    }
  }
  return upload;
}

function readJson(body: FlowJsonBody): Upload {
  const frames: Upload['frames'] = {};
  for (const name of FRAME_FIELDS) frames[name] = Buffer.from(body[name], 'base64');
  const fields: Upload['fields'] = {};
  for (const name of ['model', 'weights', 'format'] as const) if (body[name] !== undefined) fields[name] = String(body[name]);
  if (body.iterations !== undefined) fields.iterations = String(body.iterations);
  return { frames, fields };
}

/** The format the client asked for: the `format` field or query, else its Accept header. */
function chooseFormat(request: FastifyRequest, requested: string | undefined): FlowFormat {
  if (requested !== undefined) {
    if (!(requested in FLOW_FORMATS)) throw new ServiceError('ERR_BAD_REQUEST', `format must be one of ${Object.keys(FLOW_FORMATS).join(', ')}, got '${requested}'`);
    return requested as FlowFormat;
  }
  const type = request.accepts().type(ACCEPTED_TYPES.map(([t]) => t));
  if (type === false) {
    throw new ServiceError('ERR_NOT_ACCEPTABLE', `none of the accepted types (${request.headers.accept}) is offered; ` +
      `the flow comes as ${ACCEPTED_TYPES.map(([t]) => t).join(', ')}, or pick one with format=flo|kitti|color`);
  }
  return ACCEPTED_TYPES.find(([t]) => t === type)![1];
}

async function frames(upload: Upload, maxPixels: number): Promise<[ImageLike, ImageLike]> {
  const { fields } = upload;
  const raw = fields.width !== undefined || fields.height !== undefined || fields.pixelFormat !== undefined;
  const layout = raw ? {
    width: integerField('width', fields.width, 1, 16384) ?? 0,
    height: integerField('height', fields.height, 1, 16384) ?? 0,
    format: fields.pixelFormat ?? 'rgb',
  } : undefined;
  if (layout && (!layout.width || !layout.height)) throw new ServiceError('ERR_BAD_REQUEST', 'raw pixels need both width and height');
  const missing = FRAME_FIELDS.find((name) => upload.frames[name] === undefined);
  if (missing) throw new ServiceError('ERR_BAD_REQUEST', `the request has no ${missing}; send both frameA and frameB`);
  const decode = (name: typeof FRAME_FIELDS[number]) =>
    layout ? rawImage(name, upload.frames[name]!, layout, maxPixels) : decodeImage(name, upload.frames[name]!, maxPixels);
  return [await decode('frameA'), await decode('frameB')];
}

/** Refuses frames whose inference would need more memory than the model allows, before queueing them. */
function checkMemory(model: PooledModel, image: ImageLike): void {
  const needed = model.estimator.memoryNeeded(image.width, image.height);
  if (needed > model.estimator.memoryLimit) {
    throw new ServiceError('ERR_PIXEL_LIMIT', `a ${image.width}x${image.height} pair on ${model.model} needs about ${formatBytes(needed)}, ` +
      `over the model's memory limit of ${formatBytes(model.estimator.memoryLimit)}`);
  }
}

/** Bodies up to this size are read and dropped before an early refusal, so that the connection stays reusable. */
const DRAIN_LIMIT = 1024 * 1024;

/**
 * Reads and drops a small unread body: a client refused with 503 keeps its connection instead of opening a new
 * one for its retry, which under overload costs more than the refusal itself. Larger bodies are not read (the
 * connection is closed instead).
 */
async function drainSmallBody(request: FastifyRequest): Promise<void> {
  const length = Number(request.headers['content-length']);
  if (request.raw.complete || !Number.isFinite(length) || length > DRAIN_LIMIT) return;
  await new Promise<void>((resolve) => {
    request.raw.once('end', resolve).once('error', () => resolve()).once('close', resolve);
    request.raw.resume();
  });
}

function queueFull(model: PooledModel): ServiceError {
  return new ServiceError('ERR_QUEUE_FULL', `model ${model.model} has ${model.estimator.pending} requests queued or running, its limit; ` +
    'retry later', { 'retry-after': String(ModelPool.retryAfter(model)) });
}

export function flowRoute(app: FastifyInstance, context: ServerContext): void {
  const { options, pool, metrics } = context;
  // Requests between arrival and their model's queue (reading, decoding) hold up to two bodies and two frames
  // each: as many may be in that stage as all the models' queues hold, so memory stays bounded.
  const maxPreparing = options.queueLimit * pool.models.length;
  let preparing = 0;
  const optionProperties = {
    model: { type: 'string', minLength: 1, maxLength: 256 },
    weights: { type: 'string', minLength: 1, maxLength: 256 },
    iterations: { type: 'integer', minimum: 1, maximum: options.maxIterations },
    format: { type: 'string', enum: Object.keys(FLOW_FORMATS) },
  };
  const frameProperty = { type: 'string', minLength: 1, maxLength: Math.ceil((options.bodyLimit * 4) / 3) + 4 };

  app.post<{ Querystring: FlowQuery; Body: FlowJsonBody }>('/v1/flow', {
    schema: {
      querystring: { type: 'object', additionalProperties: false, properties: optionProperties },
      // JSON bodies are checked by this schema; multipart bodies are read and checked as they stream in.
      body: {
        content: {
          'application/json': {
            schema: {
              type: 'object', additionalProperties: false, required: ['frameA', 'frameB'],
              properties: { ...optionProperties, frameA: frameProperty, frameB: frameProperty },
            },
          },
        },
      },
    },
  }, async (request, reply) => {
    if (context.closing()) throw new ServiceError('ERR_SHUTTING_DOWN', 'the server is shutting down');
    const query = request.query;
    // Refused before the body is read when the default (or the queried) model is already full.
    const early = pool.find(query.model, query.weights);
    if (early.estimator.pending >= options.queueLimit || preparing >= maxPreparing) {
      metrics.rejected.inc({ model: early.model, reason: 'queue_full' });
      // The reason is taken now: the counts move while the body drains.
      const refusal = early.estimator.pending >= options.queueLimit ? queueFull(early)
        : new ServiceError('ERR_QUEUE_FULL', `the server is receiving or decoding ${preparing} requests, its limit; retry later`,
          { 'retry-after': String(ModelPool.retryAfter(early)) });
      await drainSmallBody(request);
      throw refusal;
    }
    preparing++;
    let prepared = false;
    const ready = () => { if (!prepared) { prepared = true; preparing--; } };
    try {
      return await answer(request, reply, ready);
    } finally {
      ready();
    }
  });

  async function answer(request: FastifyRequest<{ Querystring: FlowQuery; Body: FlowJsonBody }>, reply: FastifyReply, ready: () => void) {
    const query = request.query;
    if (!request.isMultipart() && (request.body === null || typeof request.body !== 'object')) {
      throw new ServiceError('ERR_UNSUPPORTED_MEDIA_TYPE', 'send the frames as multipart/form-data (fields frameA and frameB) or as application/json with base64 frameA and frameB');
    }
    const upload = request.isMultipart() ? await readMultipart(request) : readJson(request.body);
    const fields = { ...query, ...upload.fields };
    const model = pool.find(fields.model, fields.weights);
    const iterations = integerField('iterations', fields.iterations, 1, options.maxIterations);
    const format = chooseFormat(request, fields.format);
    const [a, b] = await frames(upload, options.maxPixels);
    checkMemory(model, a);

    const remaining = options.deadline - reply.elapsedTime;
    if (remaining <= 0) throw deadlineError(options.deadline, 'before inference');
    const deadline = AbortSignal.timeout(Math.ceil(remaining));
    const clientGone = new AbortController();
    const onClose = () => { if (!reply.raw.writableFinished) clientGone.abort(); };
    reply.raw.on('close', onClose);
    const started = performance.now();
    const ahead = model.estimator.pending;
    let flow;
    try {
      const pending = model.estimator.estimate(a, b, { iterations, signal: AbortSignal.any([deadline, context.shutdown, clientGone.signal]) });
      ready();  // queued: the model's own limit counts it from here
      flow = await pending;
    } catch (error) {
      if ((error as FlowError).code === 'ERR_QUEUE_FULL') {
        metrics.rejected.inc({ model: model.model, reason: 'queue_full' });
        throw queueFull(model);
      }
      if ((error as FlowError).code === 'ERR_ABORTED') {
        if (deadline.aborted) {
          metrics.rejected.inc({ model: model.model, reason: 'deadline' });
          throw deadlineError(options.deadline, 'during inference');
        }
        if (context.shutdown.aborted) throw new ServiceError('ERR_SHUTTING_DOWN', 'the server shut down before this request finished');
      }
      throw error;
    } finally {
      reply.raw.off('close', onClose);
    }
    const seconds = (performance.now() - started) / 1000;
    // Waiting behind `ahead` requests is about `ahead` inferences long: what is left is one inference.
    ModelPool.record(model, seconds / (ahead + 1));
    metrics.inference.observe({ model: model.model }, seconds);
    const body = await encodeFlow(flow, format);
    return reply
      .header('x-flow-width', String(flow.width))
      .header('x-flow-height', String(flow.height))
      .header('x-flow-format', format)
      .header('x-flow-model', model.model)
      .header('x-flow-weights', model.estimator.info.weights.name)
      .header('x-flow-iterations', String(iterations ?? model.estimator.info.defaultIterations))
      .header('server-timing', `model;desc="queued and inferred";dur=${(seconds * 1000).toFixed(1)}`)
      .type(FLOW_FORMATS[format].contentType)
      .send(body);
  }
}

function deadlineError(deadline: number, when: string): ServiceError {
  return new ServiceError('ERR_DEADLINE', `the request passed its deadline of ${deadline} ms ${when}; its inference was cancelled`);
}
