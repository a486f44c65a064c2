// Owns the precompiled header shared by every target (see common/CMakeLists.txt).
