/** Maps a path-style request to an S3 operation; what is not implemented says so (501), never passes. */
import type { Handler } from './context.js';
import { errors } from './errors.js';
import { createBucket, deleteBucket, headBucket, listBuckets, listObjectsV2 } from './listing.js';
import {
  abortMultipartUpload,
  completeMultipartUpload,
  createMultipartUpload,
  listMultipartUploads,
  listParts,
  uploadPart,
} from './multipart.js';
import {
  deleteObject,
  deleteObjects,
  getObjectAttributes,
  putObject,
  readObject,
} from './objects.js';
import { restoreObject } from './restore.js';

export interface Route {
  operation: string;
  handler: Handler;
  /** Query parameters the operation takes; any other is 501. */
  params: string[];
}

const notImplemented: Handler = async () => {
  throw errors.notImplemented();
};
const methodNotAllowed: Handler = async () => {
  throw errors.methodNotAllowed();
};

const r = (operation: string, handler: Handler, params: string[] = []): Route => ({
  operation,
  handler,
  params,
});

const GET_OBJECT_PARAMS = [
  'partNumber',
  'response-content-type',
  'response-content-language',
  'response-expires',
  'response-cache-control',
  'response-content-disposition',
  'response-content-encoding',
];

function bucketRoute(method: string, q: URLSearchParams): Route {
  switch (method) {
    case 'PUT':
      return q.size === 0
        ? r('CreateBucket', createBucket)
        : r('PutBucketSubresource', notImplemented);
    case 'HEAD':
      return r('HeadBucket', headBucket);
    case 'DELETE':
      return r('DeleteBucket', deleteBucket);
    case 'GET':
      if (q.has('uploads'))
        return r('ListMultipartUploads', listMultipartUploads, [
          'uploads',
          'prefix',
          'delimiter',
          'key-marker',
          'upload-id-marker',
          'max-uploads',
          'encoding-type',
        ]);
      if (q.get('list-type') === '2')
        return r('ListObjectsV2', listObjectsV2, [
          'list-type',
          'prefix',
          'delimiter',
          'max-keys',
          'continuation-token',
          'start-after',
          'encoding-type',
          'fetch-owner',
        ]);
      return r('ListObjects', notImplemented);
    case 'POST':
      if (q.has('delete')) return r('DeleteObjects', deleteObjects, ['delete']);
  }
  return r('Unknown', methodNotAllowed);
}

function objectRoute(method: string, q: URLSearchParams, copy: boolean): Route {
  switch (method) {
    case 'PUT':
      if (copy) return r(q.has('uploadId') ? 'UploadPartCopy' : 'CopyObject', notImplemented);
      return q.has('uploadId')
        ? r('UploadPart', uploadPart, ['uploadId', 'partNumber'])
        : r('PutObject', putObject);
    case 'GET':
      if (q.has('uploadId'))
        return r('ListParts', listParts, [
          'uploadId',
          'max-parts',
          'part-number-marker',
          'encoding-type',
        ]);
      if (q.has('attributes')) return r('GetObjectAttributes', getObjectAttributes, ['attributes']);
      return r('GetObject', readObject(false), GET_OBJECT_PARAMS);
    case 'HEAD':
      return r('HeadObject', readObject(true), GET_OBJECT_PARAMS);
    case 'DELETE':
      return q.has('uploadId')
        ? r('AbortMultipartUpload', abortMultipartUpload, ['uploadId'])
        : r('DeleteObject', deleteObject);
    case 'POST':
      if (q.has('uploads')) return r('CreateMultipartUpload', createMultipartUpload, ['uploads']);
      if (q.has('uploadId'))
        return r('CompleteMultipartUpload', completeMultipartUpload, ['uploadId']);
      if (q.has('restore')) return r('RestoreObject', restoreObject, ['restore']);
  }
  return r('Unknown', methodNotAllowed);
}

export function route(
  method: string,
  bucket: string,
  key: string,
  q: URLSearchParams,
  copy: boolean,
): Route {
  if (bucket === '')
    return method === 'GET' ? r('ListBuckets', listBuckets) : r('Unknown', methodNotAllowed);
  return key === '' ? bucketRoute(method, q) : objectRoute(method, q, copy);
}
