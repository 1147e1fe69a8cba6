import { FerryError } from '../errors';

/** VOLUME_NOT_FOUND for `name`, saying how to make it. */
export function volumeNotFound(name: string): FerryError {
  return new FerryError('VOLUME_NOT_FOUND', `volume ${name} does not exist: create it with docker volume create -d ferry ${name}`);
}
