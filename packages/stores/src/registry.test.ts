import { describe, expect, it } from 'vitest';
import { FileStore } from './file/file.store.js';
import { openStore } from './registry.js';

describe('openStore', () => {
  it('opens file:// URLs and names what it cannot open without echoing the URL', () => {
    const store = openStore('file:///mnt/usb/kinvault');
    expect(store).toBeInstanceOf(FileStore);
    expect((store as FileStore).root).toBe('/mnt/usb/kinvault');
    expect(() => openStore('ftp://host/x')).toThrow(
      /Targets of kind ftp:\/\/ are not supported by this version \(known: file:, s3:, gdrive:\)/,
    );
    expect(() => openStore('not a url secret')).toThrow(/must be a URL, such as file:\/\//);
    expect(() => openStore('not a url secret')).not.toThrow(/secret/);
    expect(() => openStore('ftp://user:secret@host/x')).toThrow(/must not hold credentials/);
    expect(() => openStore('ftp://user:secret@host/x')).not.toThrow(/secret/);
    expect(() => openStore('file:///mnt/usb?x=1')).toThrow(/folder path only/);
    expect(() => openStore('file://nas/share')).toThrow(/folder path only/);
  });
});
