// A stand-in for a Jupyter C++ kernel's <xcpp/xdisplay.hpp>, so that the unit
// tests compile dm/notebook.hpp's kernel branch (its mime_bundle_repr) the way
// xeus-cling and xeus-cpp do. The real header declares xcpp::display, which
// finds mime_bundle_repr by argument-dependent lookup.
#pragma once
