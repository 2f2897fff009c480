package kernellab

const sysSetns = 308
