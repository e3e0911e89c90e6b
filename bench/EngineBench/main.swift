import Tensors
BLASRuntime.selectKernels()
print(BLASRuntime.coreName)
