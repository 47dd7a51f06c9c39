// Video jobs: submitted here (an upload, or a path under the input directory), run by the queue's workers,
// never on this process's models. State, progress and results are read back from the queue.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { pipeline } from 'stream/promises';
import type { MultipartFile, MultipartValue } from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { JOB_ID_PATTERN, JOB_OUTPUTS, MAX_JOB_FRAMES, VideoJobData, VideoJobOutput } from '../queue/videoJob';
import type { VideoJobQueue } from '../queue/VideoJobQueue';
import type { ServerContext } from '../FlowServer';
import { ServiceError } from '../ServiceError';
import { integerField } from './integerField';

const JOB_FIELDS = ['path', 'model', 'weights', 'iterations', 'maxFrames', 'outputs'] as const;
type JobField = typeof JOB_FIELDS[number];
const VIDEO_EXTENSIONS = /^\.[A-Za-z0-9]{1,8}$/;
const CONTENT_TYPES: Record<string, string> = { '.json': 'application/json', '.flo': 'application/x-flo', '.avi': 'video/x-msvideo' };

interface JobJsonBody {
  path: string;
  model?: string;
  weights?: string;
  iterations?: number;
  maxFrames?: number;
  outputs?: VideoJobOutput[] | string;
}

function outputsField(value: unknown): VideoJobOutput[] {
  if (value === undefined) return ['flo', 'video'];
  const list = Array.isArray(value) ? value : String(value).split(',').map((s) => s.trim()).filter(Boolean);
  const bad = list.find((o) => !(JOB_OUTPUTS as readonly unknown[]).includes(o));
  if (list.length === 0 || bad !== undefined) {
    throw new ServiceError('ERR_BAD_REQUEST', `outputs must be a list of ${JOB_OUTPUTS.join(', ')}, got '${String(bad ?? value)}'`);
  }
  return [...new Set(list)] as VideoJobOutput[];
}

/** A video path a client named: it must resolve, symbolic links followed, inside the input directory. */
function allowedPath(inputDir: string | undefined, requested: string): string {
  if (!inputDir) throw new ServiceError('ERR_PATH_NOT_ALLOWED', 'this server takes video uploads only (no input directory is configured)');
  let real: string;
  let root: string;
  try {
    root = fs.realpathSync(inputDir);
    real = fs.realpathSync(path.resolve(root, requested));
  } catch {
    throw new ServiceError('ERR_BAD_REQUEST', `video '${requested}' does not exist in the input directory`);
  }
  if (real !== root && !real.startsWith(root + path.sep)) {
    throw new ServiceError('ERR_PATH_NOT_ALLOWED', `video '${requested}' is outside the input directory`);
  }
  if (!fs.statSync(real).isFile()) throw new ServiceError('ERR_BAD_REQUEST', `video '${requested}' is not a file`);
  return real;
}

/** Streams the upload to uploads/<id>.part under the byte limit, then renames it; nothing partial stays. */
async function receiveUpload(request: FastifyRequest, jobs: VideoJobQueue, id: string, maxBytes: number) {
  const fields: Partial<Record<JobField, string>> = {};
  let video: { rel: string; name: string } | undefined;
  const partial = path.join(jobs.sharedDir, 'uploads', `${id}.part`);
  try {
    for await (const part of request.parts({ limits: { fileSize: maxBytes, files: 1 } })) {
      if (part.type === 'file') {
        const file = part as MultipartFile;
        if (file.fieldname !== 'video') {
          file.file.resume();
          throw new ServiceError('ERR_BAD_REQUEST', `unexpected file field '${file.fieldname}'; the video goes in field 'video'`);
        }
        await pipeline(file.file, fs.createWriteStream(partial, { flags: 'wx' }));
        if (file.file.truncated) throw new ServiceError('ERR_BODY_TOO_LARGE', `the video is over this server's limit of ${maxBytes} bytes`);
        const ext = path.extname(file.filename ?? '');
        const rel = `uploads/${id}${VIDEO_EXTENSIONS.test(ext) ? ext.toLowerCase() : '.video'}`;
        await fs.promises.rename(partial, path.join(jobs.sharedDir, rel));
        video = { rel, name: path.basename(file.filename ?? 'upload') };
      } else {
        const field = part as MultipartValue<unknown>;
        if (!(JOB_FIELDS as readonly string[]).includes(field.fieldname)) {
          throw new ServiceError('ERR_BAD_REQUEST', `unexpected field '${field.fieldname}' (fields: video, ${JOB_FIELDS.join(', ')})`);
        }
        fields[field.fieldname as JobField] = String(field.value);
      }
    }
  } catch (error) {
    await fs.promises.rm(partial, { force: true });
    if (video) await fs.promises.rm(path.join(jobs.sharedDir, video.rel), { force: true });
    throw error;
  }
  return { fields, video };
}

export function jobRoutes(app: FastifyInstance, context: ServerContext): void {
  const { options, pool } = context;
  const need = (): VideoJobQueue => {
    if (!context.jobs) throw new ServiceError('ERR_JOBS_DISABLED', 'video jobs need a queue: start the server with --redis URL and --shared-dir DIR');
    return context.jobs;
  };
  const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: JOB_ID_PATTERN.source } } };
  const unavailable = (error: unknown) => new ServiceError('ERR_QUEUE_UNAVAILABLE', `the job queue cannot be reached (${(error as Error).message}); retry later`, { 'retry-after': '5' });

  app.post<{ Body: JobJsonBody }>('/v1/jobs', {
    schema: {
      body: {
        content: {
          'application/json': {
            schema: {
              type: 'object', additionalProperties: false, required: ['path'],
              properties: {
                path: { type: 'string', minLength: 1, maxLength: 4096 }, model: { type: 'string', minLength: 1, maxLength: 256 },
                weights: { type: 'string', minLength: 1, maxLength: 256 }, iterations: { type: 'integer', minimum: 1, maximum: options.maxIterations },
                maxFrames: { type: 'integer', minimum: 2 }, outputs: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string', enum: [...JOB_OUTPUTS] } }] },
              },
            },
          },
        },
      },
    },
  }, async (request, reply) => {
    const jobs = need();
    if (context.closing()) throw new ServiceError('ERR_SHUTTING_DOWN', 'the server is shutting down');
    const id = crypto.randomUUID();
    let fields: Record<string, unknown>;
    let video: string;
    let originalName: string;
    let uploaded = false;
    if (request.isMultipart()) {
      const received = await receiveUpload(request, jobs, id, options.maxVideoBytes);
      fields = received.fields;
      if (received.video && fields.path !== undefined) throw new ServiceError('ERR_BAD_REQUEST', 'send a video or a path, not both');
      if (received.video) {
        video = received.video.rel;
        originalName = received.video.name;
        uploaded = true;
      } else if (typeof fields.path === 'string') {
        video = allowedPath(options.inputDir, fields.path);
        originalName = path.basename(video);
      } else {
        throw new ServiceError('ERR_BAD_REQUEST', "the request has no video: upload one in field 'video', or name one with 'path'");
      }
    } else {
      if (request.body === null || typeof request.body !== 'object') {
        throw new ServiceError('ERR_UNSUPPORTED_MEDIA_TYPE', "send the video as multipart/form-data (field 'video') or name it in application/json { path }");
      }
      fields = { ...request.body };
      video = allowedPath(options.inputDir, request.body.path);
      originalName = path.basename(video);
    }
    try {
      const served = pool.find(fields.model as string | undefined, fields.weights as string | undefined);
      const data: VideoJobData = {
        video, originalName, uploaded, model: served.model, weights: served.requestedWeights,
        iterations: integerField('iterations', fields.iterations, 1, options.maxIterations),
        maxFrames: integerField('maxFrames', fields.maxFrames, 1, MAX_JOB_FRAMES),
        outputs: outputsField(fields.outputs),
      };
      try {
        await jobs.submit(id, data);
      } catch (error) {
        throw unavailable(error);
      }
    } catch (error) {
      if (uploaded) await fs.promises.rm(path.join(jobs.sharedDir, video), { force: true });
      throw error;
    }
    return reply.code(202).header('location', `/v1/jobs/${id}`).send({
      id, state: 'waiting', status: `/v1/jobs/${id}`, result: `/v1/jobs/${id}/result`,
    });
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', { schema: { params: idParams } }, async (request) => {
    const jobs = need();
    const status = await jobs.status(request.params.id).catch((error) => { throw unavailable(error); });
    if (!status) throw new ServiceError('ERR_NOT_FOUND', `no job '${request.params.id}'`);
    return status;
  });

  const completed = async (id: string) => {
    const status = await need().status(id).catch((error) => { throw unavailable(error); });
    if (!status) throw new ServiceError('ERR_NOT_FOUND', `no job '${id}'`);
    if (status.state !== 'completed' || !status.result) {
      const why = status.state === 'failed' ? `: ${status.failedReason}` : '';
      throw new ServiceError('ERR_JOB_NOT_DONE', `job '${id}' is ${status.state}${why}`);
    }
    return status.result;
  };

  app.get<{ Params: { id: string } }>('/v1/jobs/:id/result', { schema: { params: idParams } }, async (request) => {
    const result = await completed(request.params.id);
    return {
      id: request.params.id, dir: result.dir, summary: result.summary,
      files: result.files.map((f) => ({ ...f, url: `/v1/jobs/${request.params.id}/result/${f.name}` })),
    };
  });

  app.get<{ Params: { id: string; '*': string } }>('/v1/jobs/:id/result/*', async (request, reply) => {
    const { id } = request.params;
    if (!JOB_ID_PATTERN.test(id)) throw new ServiceError('ERR_NOT_FOUND', `no job '${id}'`);
    const result = await completed(id);
    const name = request.params['*'];
    // Only the files the result lists are served: no path from the request reaches the file system unchecked.
    const file = result.files.find((f) => f.name === name);
    if (!file) throw new ServiceError('ERR_NOT_FOUND', `job '${id}' has no file '${name}'`);
    const abs = path.join(need().sharedDir, result.dir, file.name);
    return reply.type(CONTENT_TYPES[path.extname(name)] ?? 'application/octet-stream').header('content-length', String(file.bytes))
      .send(fs.createReadStream(abs));
  });
}
