export * from './accel.js';
export * from './image-builder.js';
export * from './libvirt-provider.js';
