
Jf.f.f.f.f.f.