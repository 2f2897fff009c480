package kernellab

const sysSetns = 268
