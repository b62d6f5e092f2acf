import DirectCore
